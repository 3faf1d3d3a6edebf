"""What a student's notebooks earned, from grader-side evidence only.

A test cell keeps its points only when the kernel passed it, the judge confirmed every task the
SOURCE notebook's cell names and its re-check passed; a cell graded by hand never keeps an
automatic score. Every message is made here, never copied from the student's kernel.
docs/grading.md, "Which cells keep their points".
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autograder.results.records import CellGrade, FunctionCase, NotebookGrades, Recheck

DID_NOT_RUN = "did not run: the notebook stopped before this cell (the kernel died or ran out of time)"
FAILED = "failed when your notebook ran"
NOT_CHECKABLE = "no automatic points: this check reads notebook state the grader cannot confirm"
NOT_ANSWERED = "not answered"
NO_RESPONSE = "No response."  # nbgrader's auto_comment on an answer cell left as released


@dataclass(frozen=True)
class CellClaim:
    """What the source notebook says one graded cell checks (a written answer: manual)."""

    tasks: tuple[str, ...]
    recheck: str = ""
    manual: bool = False


def is_autograded_test(cell: Any) -> bool:
    """An nbgrader test cell: a graded code cell that is not a solution."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return (cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")
            and bool(meta.get("grade_id")))


def cell_claims(source_dir: str | Path) -> dict[str, dict[str, CellClaim]]:
    """{notebook: {grade_id: CellClaim}} of the graded cells of the source notebooks."""
    import nbformat

    found: dict[str, dict[str, CellClaim]] = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        claims: dict[str, CellClaim] = {}
        for cell in nbformat.read(path, as_version=4).cells:
            if is_autograded_test(cell):
                meta = cell.metadata.get("cs231n", {})
                claims[cell.metadata.nbgrader.grade_id] = CellClaim(
                    tuple(meta.get("tasks", ())), str(meta.get("recheck", "") or ""))
            elif cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                claims[cell.metadata.nbgrader.grade_id] = CellClaim((), manual=True)
        found[path.stem] = claims
    return found


def recheck_names(source_dir: str | Path) -> list[str]:
    """Every re-check the source notebooks' test cells name."""
    return sorted({c.recheck for claims in cell_claims(source_dir).values()
                   for c in claims.values() if c.recheck})


def _ran(cell: Any) -> bool:
    return bool(cell.get("outputs")) or cell.get("execution_count") is not None


def read_notebook_grades(course_root: str | Path, db_url: str, assignment_id: str,
                         student_id: str) -> list[NotebookGrades]:
    """Every notebook's graded cells from the private gradebook, by name; `ran` says whether the
    autograded notebook shows the cell executed, `unanswered` whether nbgrader found the answer
    cell as the release had it."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    notebooks: list[NotebookGrades] = []
    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return notebooks
        for nb in submission.notebooks:
            path = Path(course_root) / "autograded" / student_id / assignment_id / f"{nb.name}.ipynb"
            ran = set()
            if path.exists():
                for cell in nbformat.read(path, as_version=4).cells:
                    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    if grade_id and _ran(cell):
                        ran.add(grade_id)
            unanswered = {c.name for c in nb.comments if c.auto_comment == NO_RESPONSE}
            grades = [CellGrade(g.name, g.max_score, g.auto_score, bool(g.needs_manual_grade), ran=g.name in ran,
                                unanswered=g.name in unanswered) for g in nb.grades]
            notebooks.append(NotebookGrades(nb.name, tuple(sorted(grades, key=lambda g: g.name))))
    return notebooks


def _unconfirmed(tasks: Iterable[str], verdicts: dict[str, list[bool]]) -> list[str]:
    """'conv_forward_naive failed 2 of 3 function cases' for each task the judge did not confirm."""
    out = []
    for task in tasks:
        cases = verdicts.get(task, [])
        failed = sum(1 for passed in cases if not passed)
        if not cases:
            out.append(f"{task} has no function cases")
        elif failed:
            out.append(f"{task} failed {failed} of {len(cases)} function cases")
    return out


def confirm_with_functions(notebooks: Sequence[NotebookGrades], functions: Sequence[FunctionCase],
                           source_dir: str | Path,
                           rechecks: Sequence[Recheck] = ()) -> tuple[list[NotebookGrades], float]:
    """Every autograded cell's points and message from grader-side evidence (see the module
    docstring): the judge's function cases and re-checks, and the claims of the source notebooks
    in source_dir (never the student's copy). Returns the notebooks with each autograded cell's
    `score_before_check` (what the kernel earned), `auto_score` (what is kept: all of max_score
    or 0) and `message`, and the notebook score before the check."""
    verdicts: dict[str, list[bool]] = {}
    for f in functions:
        verdicts.setdefault(f.task, []).append(bool(f.passed))
    rechecked = {r.name: r for r in rechecks}
    claims = cell_claims(source_dir)
    before = sum(g.auto_score or 0.0 for nb in notebooks for g in nb.grades)
    confirmed = [replace(nb, grades=tuple(_confirm(g, claims.get(nb.notebook, {}).get(g.name), verdicts, rechecked)
                                          for g in nb.grades)) for nb in notebooks]
    return confirmed, before


def _confirm(g: CellGrade, claim: CellClaim | None, verdicts: dict[str, list[bool]],
             rechecked: dict[str, Recheck]) -> CellGrade:
    """One cell of confirm_with_functions."""
    if claim is not None and claim.manual:  # graded by hand: never an automatic score
        unanswered = g.unanswered and g.auto_score == 0
        return replace(g, auto_score=0.0 if unanswered else None, needs_manual_grade=not unanswered,
                       message=NOT_ANSWERED if unanswered else "")
    if g.needs_manual_grade:
        return replace(g, message="")
    kernel = g.auto_score or 0.0
    kept, message = 0.0, ""
    if not g.ran:
        message = DID_NOT_RUN
    elif kernel < g.max_score:
        message = FAILED
    elif claim is None or not (claim.tasks or claim.recheck):
        message = NOT_CHECKABLE
    else:
        problems = _unconfirmed(claim.tasks, verdicts)
        if claim.recheck:
            result = rechecked.get(claim.recheck)
            if result is None:
                problems.append(f"the re-check {claim.recheck} did not run")
            elif not result.passed:
                problems.append(f"the re-check {claim.recheck} failed: {result.message}")
        if problems:
            message = "not confirmed: " + "; ".join(problems)
        else:
            kept, message = float(g.max_score), "passed"
    return replace(g, score_before_check=kernel, auto_score=kept, message=message)


def mark_set_aside(notebooks: Sequence[NotebookGrades], reasons: dict[str, str]) -> list[NotebookGrades]:
    """The notebooks, those named in reasons ({notebook: why}) set aside (NotebookGrades.set_aside)."""
    return [nb.set_aside(reasons[nb.notebook]) if nb.notebook in reasons else nb for nb in notebooks]
