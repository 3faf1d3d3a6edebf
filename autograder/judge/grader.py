"""Judging one submission: which cases, one worker at a time in a bwrap sandbox (process.py),
each reply judged against the reference's outputs (compare.py, reference.py); a CaseResult per
hidden case and a RecheckResult per re-check."""
from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from autograder.budget import TimeBudget
from autograder.config import ROOT
from autograder.errors import JudgeError
from autograder.hidden.case import Case, Recheck
from autograder.judge import wire
from autograder.judge.compare import compare, summarized, verdict
from autograder.judge.folder import prepare
from autograder.judge.process import WORKER_MEMORY_MB, CaseTimeout, ImportBroken, Worker, WorkerGone, limits
from autograder.judge.reference import Expected, expected_outputs
from autograder.sandbox import bubblewrap as _sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one hidden case; message is short, for the student's feedback."""

    task: str
    case: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass(frozen=True)
class RecheckResult:
    """The verdict on one re-check; the message is made by the grader, for the feedback."""

    name: str
    passed: bool
    message: str


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------
def _salt() -> int:
    from autograder.hidden.cases import SALT

    return SALT


def cases_for(reference_pkg_dir: str | Path | None = None) -> list[Case]:
    """The cases of every task of the reference package, in the order of find_tasks.

    Raises JudgeError if a task has no case: points cannot be left undefined. Cases of tasks
    that the reference package does not have are left out (with a log message).
    """
    from autograder.hidden.cases import CASES
    from cs231n.tasks import find_tasks

    tasks = [t.name for t in find_tasks(Path(reference_pkg_dir or ROOT) / "cs231n")]
    by_task: dict[str, list[Case]] = {}
    for case in CASES:
        by_task.setdefault(case.task, []).append(case)
    missing = [t for t in tasks if t not in by_task]
    if missing:
        raise JudgeError(f"tasks without hidden cases: {', '.join(missing)}; add cases for them "
                         "in autograder/hidden/cases.py")
    unknown = sorted(set(by_task) - set(tasks))
    if unknown:
        log.info("judge: cases for tasks the reference package does not have: %s", unknown)
    keys = [c.key for c in CASES]
    if len(set(keys)) != len(keys):
        raise JudgeError("two hidden cases share a task and name")
    return [case for task in tasks for case in by_task[task]]


def rechecks_named(names: Iterable[str]) -> list[Recheck]:
    """The re-checks of autograder/hidden/cases.py RECHECKS with these names; JudgeError for a
    name that has none (a notebook cell naming a re-check nobody wrote)."""
    from autograder.hidden.cases import RECHECKS

    names = set(names)
    by_name = {r.name: r for r in RECHECKS}
    unknown = sorted(names - set(by_name))
    if unknown:
        raise JudgeError(f"notebook cells name re-checks that do not exist: {', '.join(unknown)}; "
                         "add them to RECHECKS in autograder/hidden/cases.py")
    return [by_name[n] for n in sorted(names)]


# --------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------
def judge_package(student_pkg_dir: str | Path, *, budget: TimeBudget = TimeBudget(),
                  memory_mb: int = WORKER_MEMORY_MB, tasks: Iterable[str] | None = None,
                  reference_pkg_dir: str | Path | None = None) -> list[CaseResult]:
    """Judge the student's cs231n package (student_pkg_dir/cs231n) case by case.

    budget: judge_case seconds per case (and for importing the package), judge_total for all
    (cases left over fail), judge_boot for the worker's own start. memory_mb: the worker's
    address space. tasks: judge only these (default all). reference_pkg_dir: folder holding the
    reference cs231n (default the instructor's tree). BwrapMissing without bwrap.
    Returns one CaseResult per hidden case, in the order of cases_for().
    """
    start = time.monotonic()
    _sandbox.bwrap()  # refuse before any work when there is no sandbox
    reference = Path(reference_pkg_dir or ROOT).resolve()
    cases = cases_for(reference)
    if tasks is not None:
        wanted = set(tasks)
        unknown = wanted - {c.task for c in cases}
        if unknown:
            raise JudgeError(f"no such tasks: {sorted(unknown)}")
        cases = [c for c in cases if c.task in wanted]
    expected = expected_outputs(reference, cases, _salt(), budget)
    results = []
    with _sandboxed_run(Path(student_pkg_dir).resolve(), "cs231n-judge-", budget, memory_mb,
                        start + budget.judge_total) as run:
        for case in cases:
            inputs, outputs = expected[case.key]
            where = f"for {case.describe(inputs)}" if case.describe(inputs) else ""
            passed, message = run.judge(case, inputs, outputs, where)
            results.append(CaseResult(case.task, case.name, case.points if passed else 0.0,
                                      case.points, passed, message.strip()))
    return results


def recheck_package(student_pkg_dir: str | Path, names: Iterable[str], *,
                    budget: TimeBudget = TimeBudget()) -> list[RecheckResult]:
    """Run the named re-checks on the student's package (student_pkg_dir/cs231n), in the same
    kind of worker as the hidden cases, each within its own `seconds` (budget.judge_boot to start).

    Returns one RecheckResult per name, sorted by name. A re-check without a verdict passes when
    its outputs match the reference's (as a case does); one with a verdict passes when the
    verdict, run here on the returned arrays, says so.
    """
    rechecks = rechecks_named(names)
    if not rechecks:
        return []
    _sandbox.bwrap()  # refuse before any work when there is no sandbox
    compared = [r for r in rechecks if r.verdict is None]
    expected = expected_outputs(ROOT.resolve(), compared, _salt(), budget) if compared else {}
    total, longest = sum(r.seconds for r in rechecks), max(r.seconds for r in rechecks)
    own = replace(budget, judge_case=longest, judge_total=total)
    results = []
    with _sandboxed_run(Path(student_pkg_dir).resolve(), "cs231n-recheck-", own, WORKER_MEMORY_MB,
                        time.monotonic() + total + budget.judge_boot) as run:
        for recheck in rechecks:
            passed, message = _recheck_one(run, recheck, expected)
            results.append(RecheckResult(recheck.name, passed, message.strip()))
    return results


def _recheck_one(run: _Run, recheck: Recheck, expected: Expected) -> tuple[bool, str]:
    if recheck.verdict is None:
        inputs, outputs = expected[recheck.key]
        return run.judge(recheck, inputs, outputs, "")
    inputs = recheck.inputs(_salt())
    reply, failure = run.ask(recheck, recheck.sent(inputs), recheck.seconds, 64 << 20, "")
    return (False, failure) if reply is None else verdict(recheck, inputs, reply, "")


@contextlib.contextmanager
def _sandboxed_run(student_pkg_dir: Path, prefix: str, budget: TimeBudget, memory_mb: int,
                   deadline: float, uid_slot: int | None = None) -> Iterator[_Run]:
    """A _Run on a copy of the student's package (in a scratch folder named prefix...), its
    worker in a bwrap sandbox and a RunGroup as the student run's user (uid_slot: which one,
    default this process's); on leaving, the worker, the group and every process of that user
    end, and the scratch folder goes."""
    uid, gid = _sandbox.student_user(uid_slot)
    box_limits = limits(budget, memory_mb)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        w, found = prepare(tmp, student_pkg_dir)
        box = _sandbox.Sandbox(cwd=str(w), ro=(str(w),), uid=uid, gid=gid, limits=box_limits)
        group = _sandbox.RunGroup(box_limits.group_memory_mb, box_limits.nproc)
        worker = Worker(w, box_limits, box, Path(tmp) / "stderr", budget.judge_boot, group)
        run = _Run(worker, deadline, budget, None if found else "no cs231n package found in the submission")
        try:
            yield run
        finally:
            run.worker.stop()
            group.close()
            _sandbox.end_user_processes(uid)


class _Run:
    """The judging of one submission: one worker at a time, restarted after a case kills it.
    broken: why no case can pass (no package, an import that failed), or None."""

    def __init__(self, worker: Worker, deadline: float, budget: TimeBudget, broken: str | None) -> None:
        self.worker, self.deadline, self.budget, self.broken = worker, deadline, budget, broken
        self.running = False

    def judge(self, case: Case, inputs: wire.Arrays, outputs: wire.Arrays, where: str) -> tuple[bool, str]:
        """(passed, message) for one case: its verdict, or a comparison with the reference's."""
        max_bytes = 4 * sum(v.nbytes for v in outputs.values()) + (1 << 20)
        reply, failure = self.ask(case, inputs, self.budget.judge_case, max_bytes, where)
        if reply is None:
            return False, failure
        if case.verdict:
            return verdict(case, inputs, reply, where)
        if case.summary:
            reply, outputs = summarized(case, inputs, reply), case.summary(inputs, outputs)
        return compare(case, reply, outputs, where)

    def ask(self, case: Case, inputs: wire.Arrays, case_timeout: float, max_bytes: int,
            where: str) -> tuple[wire.Reply | None, str]:
        """(the worker's reply, ""), or (None, why there is none) for one case."""
        if self.broken:
            return None, self.broken
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None, f"not judged: the submission used up its {self.budget.judge_total:g} s"
        if not self.running:
            try:
                self.worker.start(min(self.budget.judge_case, left))
            except ImportBroken as exc:
                self.broken = f"could not import the package: {exc}"
                return None, self.broken
            self.running = True
            left = self.deadline - time.monotonic()
        timeout = min(case_timeout, max(left, 0.1))
        try:
            return self.worker.ask(wire.Request(case.probe, inputs), timeout, max_bytes), ""
        except CaseTimeout:
            self._restart()
            return None, f"timed out after {timeout:g} s {where}"
        except WorkerGone as exc:
            self._restart()
            return None, f"the process running your code {exc} {where}"

    def _restart(self) -> None:
        self.worker.stop()
        self.running = False
