"""The grader's time limits, in one place: one TimeBudget, passed whole to every stage that
waits on student code or on itself. docs/grading.md, "Time", says how the limits nest."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class TimeBudget:
    """Seconds, each the one default of its limit.

    cell: one notebook cell; notebook: one notebook in all (its cells within it); run_slack: an
    nbgrader run beyond its notebooks' budgets (start, kernels, saving); zygote_answer: the
    nbgrader zygote's answer beyond its run's time; kernel_zygote_start: the kernel zygote's
    imports; judge_case: one function-level case; judge_total: all of one student's cases;
    judge_boot: a judge worker's own start-up, before any submitted code runs; task_checks: a
    self-learner's public checks of one task, run before `compare` shows that task's reference."""

    cell: int = 300
    notebook: int = 600
    run_slack: int = 120
    zygote_answer: int = 60
    kernel_zygote_start: int = 120
    judge_case: int = 20
    judge_total: int = 300
    judge_boot: int = 60
    task_checks: int = 900

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TimeBudget.{f.name} must be a whole number of seconds above 0, "
                                 f"not {value!r}")

    def with_limits(self, **seconds: int | None) -> TimeBudget:
        """This budget with the limits given (None: kept), e.g. from command-line flags."""
        return replace(self, **{name: value for name, value in seconds.items() if value is not None})

    def nbgrader_run(self, notebooks: int) -> int:
        """Seconds for one nbgrader run of `notebooks` notebooks."""
        return notebooks * self.notebook + self.run_slack

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TimeBudget:
        """A budget from to_json's dict; a limit it lacks keeps its default, an unknown key is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TimeBudget limits {unknown}: known are {sorted(known)}")
        return cls(**data)


# Gradescope gives a whole submission 10 minutes unless raised in its Autograder Settings
GRADESCOPE = TimeBudget(cell=120)
# the demo class: small notebooks on the digits, so a stuck one is noticed within a minute
DEMO = TimeBudget(cell=60, judge_case=10)
