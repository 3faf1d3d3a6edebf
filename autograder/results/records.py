"""What one student's grading holds, as frozen records: a graded cell, a notebook's cells and where
it stopped, a function case, a re-check; GradeResult and NotGraded around them. Their stored
JSON form is written and read here only (`to_json` / `from_json`); rows stored before these
records existed read back the same (tests/data/stored_results_s7.json)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

Json = dict[str, Any]


def _without(data: Json, **absent: Any) -> Json:
    """data without the keys whose value is the one given (the field was never set)."""
    return {k: v for k, v in data.items() if k not in absent or v != absent[k]}


@dataclass(frozen=True)
class CellGrade:
    """One graded cell. auto_score: what the grader keeps (None: waiting for staff);
    score_before_check: what the kernel earned, before the judge's confirmation (autograded cells
    only); ran / unanswered: the autograded notebook shows it executed / nbgrader found the answer
    as released; hand_score, comment: staff's, laid over when a page is made (never stored)."""

    name: str
    max_score: float
    auto_score: float | None = None
    needs_manual_grade: bool = False
    ran: bool = True
    unanswered: bool = False
    message: str = ""
    score_before_check: float | None = None
    hand_score: float | None = None
    comment: str = ""

    @property
    def is_extra(self) -> bool:
        return self.name.startswith("extra_")

    @property
    def earned(self) -> float:
        """The points this cell counts: the hand score when staff gave one, else the automatic one."""
        return self.hand_score if self.hand_score is not None else (self.auto_score or 0.0)

    def to_json(self) -> Json:
        return _without(dataclasses.asdict(self), score_before_check=None, hand_score=None, comment="")

    @classmethod
    def from_json(cls, data: Json) -> CellGrade:
        return cls(name=data["name"], max_score=data["max_score"], auto_score=data.get("auto_score"),
                   needs_manual_grade=bool(data.get("needs_manual_grade")), ran=bool(data.get("ran", True)),
                   unanswered=bool(data.get("unanswered")), message=data.get("message") or "",
                   score_before_check=data.get("score_before_check"), hand_score=data.get("hand_score"),
                   comment=data.get("comment") or "")


@dataclass(frozen=True)
class Stop:
    """A cell of an autograded notebook (its position, the graded cell at or before it) and, for
    the first error, the exception's name."""

    cell: int
    after: str
    exception: str = ""

    def to_json(self) -> Json:
        return _without(dataclasses.asdict(self), exception="")

    @classmethod
    def from_json(cls, data: Json | None) -> Stop | None:
        return None if data is None else cls(data["cell"], data.get("after") or "", data.get("exception") or "")


@dataclass(frozen=True)
class Stops:
    """Where a notebook went wrong (autograder.results.causes.read_stops), each place only when it
    happened, and the limits it ran under (seconds)."""

    cell_timeout: int | None = None
    notebook_budget: int | None = None
    error: Stop | None = None
    timed_out: Stop | None = None
    not_run: Stop | None = None
    did_not_run: tuple[str, ...] = ()

    def to_json(self) -> Json:
        data: Json = {"cell_timeout": self.cell_timeout, "budget": self.notebook_budget}
        for name in ("error", "timed_out", "not_run"):
            stop = getattr(self, name)
            if stop is not None:
                data[name] = stop.to_json()
        if self.did_not_run:
            data["did_not_run"] = list(self.did_not_run)
        return data

    @classmethod
    def from_json(cls, data: Json | None) -> Stops | None:
        if data is None:
            return None
        return cls(data.get("cell_timeout"), data.get("budget"), Stop.from_json(data.get("error")),
                   Stop.from_json(data.get("timed_out")), Stop.from_json(data.get("not_run")),
                   tuple(data.get("did_not_run", ())))


@dataclass(frozen=True)
class NotebookGrades:
    """One notebook's graded cells (by name); stops: where it went wrong (None: not read);
    not_attempted: why it was set aside ("": it was graded)."""

    notebook: str
    grades: tuple[CellGrade, ...] = ()
    stops: Stops | None = None
    not_attempted: str = ""

    def set_aside(self, reason: str) -> NotebookGrades:
        """This notebook not attempted: every cell 0 points, none waiting for staff, the reason its message."""
        return replace(self, not_attempted=reason, grades=tuple(
            replace(g, auto_score=0.0, needs_manual_grade=False, message=reason) for g in self.grades))

    def to_json(self) -> Json:
        data: Json = {"notebook": self.notebook, "grades": [g.to_json() for g in self.grades]}
        if self.stops is not None:
            data["stops"] = self.stops.to_json()
        if self.not_attempted:
            data["not_attempted"] = self.not_attempted
        return data

    @classmethod
    def from_json(cls, data: Json) -> NotebookGrades:
        return cls(data["notebook"], tuple(CellGrade.from_json(g) for g in data.get("grades", ())),
                   Stops.from_json(data.get("stops")), data.get("not_attempted") or "")


@dataclass(frozen=True)
class FunctionCase:
    """The judge's verdict on one hidden case of a task, as stored (its message the grader's)."""

    task: str
    case: str
    points: float
    max_points: float
    passed: bool
    message: str = ""

    def to_json(self) -> Json:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Json) -> FunctionCase:
        return cls(data["task"], data["case"], data.get("points", 0.0), data.get("max_points", 0.0),
                   bool(data["passed"]), data.get("message") or "")


@dataclass(frozen=True)
class Recheck:
    """The judge's verdict on one re-check of a notebook cell."""

    name: str
    passed: bool
    message: str = ""

    def to_json(self) -> Json:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Json) -> Recheck:
        return cls(data["name"], bool(data["passed"]), data.get("message") or "")


@dataclass(frozen=True)
class Seconds:
    """Wall-clock seconds of one student's grading: the judge's, then the notebooks'."""

    judge: float = 0.0
    notebooks: float = 0.0

    def to_json(self) -> Json:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Json) -> Seconds:
        return cls(data.get("judge", 0.0), data.get("notebooks", 0.0))


@dataclass(frozen=True)
class MemoryPeaks:
    """The most memory (MiB) nbgrader's cgroup (None without one) and the worker process held."""

    nbgrader: float | None = None
    worker: float = 0.0

    def to_json(self) -> Json:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Json) -> MemoryPeaks:
        return cls(data.get("nbgrader"), data.get("worker", 0.0))


@dataclass(frozen=True)
class Parts:
    """A result's points in parts (autograder.results.store.scores): the notebooks' score and
    required maximum, extra credit and its most, the function cases' points (counted nowhere),
    the written answers waiting for staff, the function cases passed of all."""

    notebook_score: float
    notebook_max: float
    extra_credit: float
    extra_max: float
    function_score: float
    function_max: float
    manual_pending: int
    function_cases: int
    function_cases_passed: int


@dataclass
class GradeResult:
    """One student's grading, as a worker returns it and the gradebook stores it.

    rechecks: the judge's re-checks of notebook cells; timed_out: notebooks that ran out of time;
    out_of_space: notebooks whose kernel filled the space it may write (the run's tmpfs);
    kernel_died: notebooks whose kernel died of the student's doing; isolation: the limits mode
    the run used ("cgroup v1", "rlimits", "self (...)"; "" when the job does not say);
    memory_mb: the peaks of nbgrader's cgroup (None without one) and of the worker, in MiB.
    A new field needs a default: rows stored before it read back with it; keys this version
    does not know are kept in `extra`."""

    student_id: str
    digest: str
    notebooks: list[NotebookGrades] = field(default_factory=list)
    functions: list[FunctionCase] = field(default_factory=list)
    notebook_score_before_check: float = 0.0
    missing_files: list[str] = field(default_factory=list)
    nbgrader_ok: bool = True
    nbgrader_log: str = ""
    rechecks: list[Recheck] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    out_of_space: list[str] = field(default_factory=list)
    kernel_died: list[str] = field(default_factory=list)
    isolation: str = ""
    seconds: Seconds = Seconds()
    memory_mb: MemoryPeaks = MemoryPeaks()
    extra: Json = field(default_factory=dict)
    # where the worker left its files; the coordinator's business, never stored
    autograded_dir: str = ""
    scratch: str = ""

    TRANSIENT: ClassVar[tuple[str, ...]] = ("autograded_dir", "scratch")
    RECORDS: ClassVar[dict[str, Any]] = {"notebooks": NotebookGrades, "functions": FunctionCase,
                                         "rechecks": Recheck}  # lists of records
    RECORD: ClassVar[dict[str, Any]] = {"seconds": Seconds, "memory_mb": MemoryPeaks}  # one record

    def to_dict(self) -> Json:
        """The stored form, as a dict (to_json's)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in self.TRANSIENT and f.name != "extra"}
        for name in self.RECORDS:
            data[name] = [record.to_json() for record in data[name]]
        for name in self.RECORD:
            data[name] = data[name].to_json()
        return {**self.extra, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> GradeResult:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", *cls.TRANSIENT}
        fields = {k: v for k, v in data.items() if k in known}
        for name, record in cls.RECORDS.items():
            fields[name] = [record.from_json(item) for item in fields.get(name, ())]
        for name, one in cls.RECORD.items():
            fields[name] = one.from_json(fields.get(name) or {})
        return cls(**fields, extra={k: v for k, v in data.items() if k not in known and k not in cls.TRANSIENT})

    def grades(self) -> list[tuple[NotebookGrades, CellGrade]]:
        """Every graded cell, with its notebook, in order."""
        return [(nb, g) for nb in self.notebooks for g in nb.grades]


@dataclass
class NotGraded:
    """A student the grader failed to grade (disk full, database error, nbgrader crash, the
    grader's own timeout, a judge infrastructure error): why, never a score."""

    student_id: str
    digest: str
    reason: str
    log: str = ""
    scratch: str = ""  # never stored

    def to_json(self) -> str:
        return json.dumps({"student_id": self.student_id, "digest": self.digest, "reason": self.reason,
                           "log": self.log})

    @classmethod
    def from_json(cls, text: str) -> NotGraded:
        data = json.loads(text)
        return cls(student_id=data["student_id"], digest=data["digest"], reason=data["reason"],
                   log=data.get("log", ""))
