"""Grade a self-learner's own workspace with the hidden tests, without root: collect, grade_all
and the feedback page in a private temporary course folder (docs/self-study.md).

    python -m autograder grade-mine WORKSPACE        (make grade-mine, in the workspace or here)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from autograder.budget import TimeBudget
from autograder.config import Course

if TYPE_CHECKING:
    from autograder.results.store import GradeResult

STUDENT = "self-study"  # the one student of the private course folder
FEEDBACK = "feedback.html"  # in the workspace


def stage(workspace: str | Path, folder: str | Path) -> Path:
    """folder/STUDENT: a copy of what a submission holds (top-level notebooks, cs231n/**/*.py; no
    links, caches or checkpoints), for collect to check and take. Returns it."""
    workspace, dest = Path(workspace), Path(folder) / STUDENT
    files = [p for p in workspace.glob("*.ipynb")]
    files += [p for p in (workspace / "cs231n").rglob("*.py") if "__pycache__" not in p.parts]
    for path in files:
        if path.is_symlink() or not path.is_file():
            continue
        target = dest / path.relative_to(workspace)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dest


def what_went_wrong(result: GradeResult, limit: int = 12) -> list[str]:
    """Lines naming the checks that lost points: notebook cells (with the grader's message) and
    function cases; at most `limit` of each, then how many more."""
    cells = [f"{nb.notebook}: {g.name} ({g.auto_score or 0:g}/{g.max_score:g}"
             f"{', extra credit' if g.name.startswith('extra_') else ''}): {g.message or 'failed'}"
             for nb in result.notebooks for g in nb.grades
             if not g.needs_manual_grade and (g.auto_score or 0) < g.max_score]
    cases = [f"{f.task} / {f.case}: {f.message}" for f in result.functions if not f.passed]
    lines: list[str] = []
    for title, found in (("notebook checks", cells), ("function cases (the judge)", cases)):
        if found:
            lines.append(f"{title} that lost points: {len(found)}")
            lines += [f"  - {line}" for line in found[:limit]]
            lines += [f"  ... and {len(found) - limit} more (see the feedback page)"] if len(found) > limit else []
    return lines


def grade_workspace(workspace: str | Path, *, budget: TimeBudget = TimeBudget(),
                    log: Callable[[str], object] = print) -> tuple[GradeResult | None, Path | None, str]:
    """Grade the workspace; returns (GradeResult or None, feedback page path or None, why not).
    The private course folder is removed afterwards."""
    from autograder.intake.collect import collect
    from autograder.results.feedback import write_feedback
    from autograder.grading.grade import grade_all

    workspace = Path(workspace).resolve()
    if not list(workspace.glob("*.ipynb")) or not (workspace / "cs231n").is_dir():
        return None, None, (f"{workspace} holds no notebooks and cs231n/ package: give the workspace "
                            "`make self-study` made (make grade-mine WORKSPACE=...)")
    with tempfile.TemporaryDirectory(prefix="cs231n-grade-mine-") as tmp:
        course = Course(root=Path(tmp) / "course", db_url=f"sqlite:///{tmp}/course/gradebook.db")
        stage(workspace, Path(tmp) / "submissions")
        refused = [c.error for c in collect(Path(tmp) / "submissions", course) if c.error]
        if refused:
            return None, None, f"your work could not be collected: {'; '.join(refused)}"
        log(f"grading {workspace} (every notebook runs, in fast mode on the offline digits: minutes)")
        results, failures = grade_all(course, workers=1, progress=False, own_user=True, dataset="digits",
                                      budget=budget)
        if STUDENT not in results:
            return None, None, f"not graded: {failures.get(STUDENT, 'the grader gave no result')}"
        page = write_feedback(course)[STUDENT]
        shutil.copyfile(page, workspace / FEEDBACK)
    return results[STUDENT], workspace / FEEDBACK, ""


def main(workspace: str | Path, *, budget: TimeBudget = TimeBudget()) -> int:
    """The grade-mine command; returns its exit code (0 graded, 1 not graded, 2 nothing to grade)."""
    from autograder.sandbox.bubblewrap import BwrapMissing, describe_isolation
    from autograder.results.store import problems, scores

    started = time.time()
    try:
        result, page, why = grade_workspace(workspace, budget=budget)
    except BwrapMissing as error:
        print(f"grade-mine: {error}", file=sys.stderr)
        return 2
    if result is None:
        print(f"grade-mine: {why}", file=sys.stderr)
        return 2 if "holds no notebooks" in why or "collected" in why else 1
    score, max_score, parts = scores(result)
    passed = sum(1 for f in result.functions if f.passed)
    print(f"\ntotal: {score:g} of {max_score:g} points (extra credit counts above the maximum); the judge "
          f"passed {passed} of {len(result.functions)} function cases")
    manual = [g for nb in result.notebooks for g in nb.grades if g.needs_manual_grade]
    if manual:
        required = sum(g.max_score for g in manual if not g.name.startswith("extra_"))
        print(f"{len(manual)} written answers ({required:g} points of the maximum) are for a person to read: "
              "not in the total")
    for line in [*problems(result), *what_went_wrong(result)]:
        print(line)
    if result.missing_files:
        print(f"missing, so their tasks stayed stubbed: {', '.join(result.missing_files)}")
    print(f"isolation: {describe_isolation()}")
    print(f"graded in {time.time() - started:.0f} s; feedback page: {page}")
    return 0
