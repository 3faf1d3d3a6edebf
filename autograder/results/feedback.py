"""Feedback for students: one HTML page each, built from the stored results.

A page shows check names, points and messages made by the grader (autograder.results.evidence for
notebook cells, the judge for function cases and re-checks): never a test's source (nbgrader's
own generate_feedback prints hidden tests verbatim), never text the student's kernel produced
after a hidden test ran in it, and never a file of the instructor's (the autograded notebooks
stay in the course folder). The page is rendered from the stored plain data, autoescaped.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape

from autograder.results.causes import causes, import_failures, in_notebook_order, source_layout
from autograder.results.hand_grades import graded_results, hand_graded
from autograder.results.records import GradeResult
from autograder.results.store import scores

if TYPE_CHECKING:
    from autograder.config import Course
from autograder.results.scale import FUNCTIONS_SENTENCE

TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(result: GradeResult, assignment_id: str, layout: dict[str, list[tuple[str, str]]] | None = None) -> str:
    """The feedback page of one stored result, as a str. layout: causes.source_layout of the
    source notebooks (checks in notebook order, under their sections; else by name)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["hand_graded"] = hand_graded
    score, max_score, parts = scores(result)
    broken = {id(f) for cases in import_failures(result.functions).values() for f in cases}
    return env.get_template("feedback.html.j2").render(
        student_id=result.student_id, assignment_id=assignment_id, score=score, max_score=max_score,
        parts=parts, notebooks=in_notebook_order(result.notebooks, layout or {}), causes=causes(result, layout),
        functions=[f for f in result.functions if id(f) not in broken], not_imported=len(broken),
        functions_sentence=FUNCTIONS_SENTENCE)


def write_atomically(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_feedback(course: Course, students: list[str] | None = None) -> dict[str, Path]:
    """Write course/feedback/<student>/<assignment>/feedback.html, hand grades included;
    returns {student: path}."""
    written: dict[str, Path] = {}
    layout = source_layout(course.source)
    for sid, result in sorted(graded_results(course).items()):
        if students and sid not in students:
            continue
        path = course.step_dir("feedback", sid) / "feedback.html"
        write_atomically(path, render(result, course.assignment_id, layout))
        written[sid] = path
    return written
