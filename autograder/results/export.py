"""Grades out: a CSV for the LMS, the class report, per-student results, and Gradescope's results.json.

Only the stored results go out (scores and grader-made messages, see autograder.results.feedback);
never an autograded notebook or nbgrader's log."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.results.causes import causes, import_sentences, notebook_causes
from autograder.results.evidence import NOT_ANSWERED
from autograder.results.feedback import write_atomically
from autograder.results.hand_grades import graded_results, hand_graded
from autograder.results.records import CellGrade, GradeResult, NotebookGrades, NotGraded
from autograder.results.scale import FUNCTIONS_SENTENCE
from autograder.results.store import not_graded, problems, scores

if TYPE_CHECKING:
    from autograder.config import Course

CSV_FIELDS = ["student_id", "score", "max_score", "extra_credit", "manual_pending", "function_cases_passed",
              "function_cases", "missing_files", "problems", "status"]


def rows(results: dict[str, GradeResult], failures: dict[str, NotGraded]) -> list[dict[str, Any]]:
    """One dict per student, the CSV's columns: graded ones ({student: GradeResult}) with their
    scores, not graded ones ({student: NotGraded}: the grader failed, see autograder.results.store)
    with no number at all."""
    out = [{"student_id": sid, "status": "not graded", "problems": f"not graded: {failure.reason}"}
           for sid, failure in failures.items()]
    out += [row(result) for result in results.values()]
    return sorted(out, key=lambda r: r["student_id"])


def row(result: GradeResult) -> dict[str, Any]:
    """The CSV's row of one graded result."""
    score, max_score, parts = scores(result)
    return {"student_id": result.student_id, "score": round(score, 3), "max_score": round(max_score, 3),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(parts).items()},
            "missing_files": " ".join(result.missing_files), "problems": "; ".join(problems(result)),
            "status": "graded"}


def grades_csv(results: dict[str, GradeResult], failures: dict[str, NotGraded]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows(results, failures))
    return buffer.getvalue()


def cells_with_hidden_tests(source_dir: str | Path) -> set[tuple[str, str]]:
    """{(notebook name, grade_id)} of the source notebooks' cells that hold hidden tests."""
    import nbformat

    found = set()
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id and "BEGIN HIDDEN TESTS" in cell.source:
                found.add((path.stem, grade_id))
    return found


@dataclass(frozen=True)
class GradescopeTest:
    """One test of Gradescope's results.json. score None: none yet (a written answer, left to a
    Gradescope question of its own); status "" and tags (): not said."""

    name: str
    max_score: float
    output: str
    visibility: str = "visible"
    score: float | None = None
    status: str = ""
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "max_score": self.max_score, "output": self.output,
                                "visibility": self.visibility}
        if self.score is not None:
            data["score"] = self.score
        if self.status:
            data["status"] = self.status
        if self.tags:
            data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class GradescopeResults:
    """Gradescope's results.json (its "Autograder Specifications"): the score, the text shown
    above the tests, the tests; execution_time (seconds) once the run is over."""

    score: float
    output: str
    tests: tuple[GradescopeTest, ...] = ()
    stdout_visibility: str = "hidden"
    execution_time: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"score": self.score, "output": self.output, "stdout_visibility": self.stdout_visibility,
                                "tests": [t.to_json() for t in self.tests]}
        if self.execution_time is not None:
            data["execution_time"] = self.execution_time
        return data


def _status_tests(result: GradeResult) -> list[GradescopeTest]:
    """Gradescope tests, visible at once and worth nothing, that say how each notebook ran and
    which file of the package does not import (what a student needs before publishing)."""
    tests = []
    for nb in result.notebooks:
        said = notebook_causes(nb, result)
        tests.append(GradescopeTest(f"{nb.notebook}: how it ran", 0.0, " ".join(said) or f"{nb.notebook} ran to its end.",
                                    score=0.0, status="failed" if said else "passed", tags=("status",)))
    for sentence in import_sentences(result.functions):
        tests.append(GradescopeTest(f"your package: {sentence.split(' does not import')[0].split(' ', 2)[-1]}", 0.0,
                                    sentence, score=0.0, status="failed", tags=("status",)))
    return tests


def _cell_test(nb: NotebookGrades, g: CellGrade, hidden_cells: Collection[tuple[str, str]],
               hidden_visibility: str) -> GradescopeTest:
    """The Gradescope test of one graded cell (gradescope_results)."""
    name = f"{nb.notebook}: {g.name}"
    if g.needs_manual_grade or g.message == NOT_ANSWERED:  # Gradescope's manual question
        return GradescopeTest(f"{name} (written answer)", 0.0,
                              f"Not answered: 0 of its {g.max_score:g} points." if not g.needs_manual_grade
                              else f"Pending: graded by hand by the course staff ({g.max_score:g} points).")
    if g.hand_score is not None:
        return GradescopeTest(name, g.max_score, "\n".join(filter(None, [hand_graded(g), g.comment])),
                              score=g.hand_score, tags=("by hand",))
    score = g.auto_score or 0.0
    hidden = (nb.notebook, g.name) in hidden_cells
    return GradescopeTest(name, 0.0 if nb.not_attempted.startswith("not attempted") else g.max_score, g.message,
                          visibility=hidden_visibility if hidden else "visible", score=score,
                          status="passed" if score >= g.max_score else "failed", tags=("notebook",))


def gradescope_results(result: GradeResult, hidden_cells: Collection[tuple[str, str]] = frozenset(),
                       hidden_visibility: str = "after_published") -> GradescopeResults:
    """Gradescope's results.json for one graded result: every check a test with its points.

    Visible at once: each notebook's status and the package's import errors (worth nothing), and
    every check without hidden material; tests that hold hidden material (every function case,
    cells with hidden tests) get hidden_visibility, their output the grader's message. Written
    answers are max_score 0 (a Gradescope question of their own), and so is a notebook not graded
    there for want of its package: every student's maxima add up to the same autograded points
    (docs/publishing.md)."""
    tests = _status_tests(result)
    tests += [_cell_test(nb, g, hidden_cells, hidden_visibility) for nb, g in result.grades()]
    tests += [GradescopeTest(f"{f.task}: {f.case}", 0.0, f.message or "", visibility=hidden_visibility, score=0.0,
                             status="passed" if f.passed else "failed", tags=("function", f.task))
              for f in result.functions]  # no points of their own (autograder.results.scale)
    score, max_score, parts = scores(result)
    lines = [f"Score: {score:g} of {max_score:g}" + (f", {parts.extra_credit:g} of it extra credit." if parts.extra_credit else "."),
             FUNCTIONS_SENTENCE, *causes(result)]
    return GradescopeResults(round(score, 3), "\n".join(lines), tuple(tests))


def export(course: Course, out_dir: str | Path) -> Path:
    """Write out_dir/grades.csv, out_dir/report.html (autograder.results.report), out_dir/results/<student>.json
    and out_dir/gradescope/<student>/results.json (as a Gradescope run writes it), hand grades
    included; returns the CSV's path."""
    from autograder.results import report
    from autograder.results.scale import course_scale

    out_dir = Path(out_dir)
    results, failures = graded_results(course), not_graded(course)
    write_atomically(out_dir / "grades.csv", grades_csv(results, failures))
    write_atomically(out_dir / "report.html", report.render(results, {sid: f.reason for sid, f in failures.items()},
                                                             course_scale(course.source), course.assignment_id))
    hidden_cells = cells_with_hidden_tests(course.source)
    for sid, result in results.items():
        stored = {k: v for k, v in result.to_dict().items() if k != "nbgrader_log"}
        write_atomically(out_dir / "results" / f"{sid}.json", json.dumps(stored, indent=1))
        write_atomically(out_dir / "gradescope" / sid / "results.json", json.dumps(gradescope_results(result, hidden_cells).to_json(), indent=1))
    return out_dir / "grades.csv"
