"""Hand grades: the points and comments staff give in formgrader's Manual Grading, laid over the
stored results so that feedback, grades.csv and Gradescope's results count them.

Formgrader writes them into nbgrader's gradebook (Grade.manual_score and extra_credit,
Comment.manual_comment); they are read from there each time a page or an export is made, so
grading by hand after `grade` needs no second grading run. Courses without formgrader write a
CSV and load it into the same gradebook (`import_csv`), so there is one place to look.
A hand score set on an autograded check is the staff's override, and counts too.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.results.records import CellGrade, GradeResult

if TYPE_CHECKING:
    from autograder.config import Course

GRADED_BY_HAND = "graded by hand"
CSV_COLUMNS = ("student_id", "notebook", "cell", "points", "comment")
MAX_COMMENT = 4000  # characters of a comment kept for a page


@dataclass(frozen=True)
class HandGrade:
    """One cell's hand grade: its points (None: only a comment) and the grader's comment."""

    points: float | None = None
    comment: str = ""


def read_gradebook(course: Course) -> dict[str, dict[tuple[str, str], HandGrade]]:
    """{student_id: {(notebook, cell): HandGrade}} of every cell of the course's assignment that
    staff scored or commented on."""
    from nbgrader.api import Gradebook, MissingEntry

    found: dict[str, dict[tuple[str, str], HandGrade]] = {}
    with Gradebook(course.db_url) as gb:
        try:
            assignment = gb.find_assignment(course.assignment_id)
        except MissingEntry:
            return found
        for submission in assignment.submissions:
            mine = found.setdefault(submission.student_id, {})
            for nb in submission.notebooks:
                comments = {c.name: c.manual_comment for c in nb.comments if c.manual_comment}
                for g in nb.grades:
                    points = None if g.manual_score is None else g.manual_score + (g.extra_credit or 0.0)
                    comment = (comments.get(g.name) or "")[:MAX_COMMENT]
                    if points is not None or comment:
                        mine[(nb.name, g.name)] = HandGrade(points, comment)
    return {sid: cells for sid, cells in found.items() if cells}


def apply(result: GradeResult, hand: dict[tuple[str, str], HandGrade]) -> GradeResult:
    """A copy of a GradeResult with its hand grades ({(notebook, cell): HandGrade}) in: each such
    grade gets `hand_score` (counted by results.scores in place of the automatic score), is no
    longer waiting, and carries the grader's `comment`."""
    def graded(notebook: str, g: CellGrade) -> CellGrade:
        given = hand.get((notebook, g.name))
        if given is None:
            return g
        if given.comment:
            g = replace(g, comment=given.comment)
        if given.points is not None:
            g = replace(g, hand_score=float(given.points), needs_manual_grade=False, message=GRADED_BY_HAND)
        return g

    return replace(result, notebooks=[replace(nb, grades=tuple(graded(nb.notebook, g) for g in nb.grades))
                                      for nb in result.notebooks])


def graded_results(course: Course) -> dict[str, GradeResult]:
    """{student_id: GradeResult} of every graded student, with their hand grades."""
    from autograder.results.store import stored_results

    hand = read_gradebook(course)
    return {sid: apply(result, hand.get(sid, {})) for sid, result in stored_results(course).items()}


def hand_graded(grade: CellGrade) -> str:
    """'1 / 1 graded by hand', of a grade that has a hand score."""
    return f"{grade.hand_score:g} / {grade.max_score:g} {GRADED_BY_HAND}"


class BadHandGrades(ValueError):
    """A CSV of hand grades that cannot be loaded; nothing of it was stored."""


def import_csv(course: Course, path: str | Path) -> int:
    """Load a CSV of hand grades (columns CSV_COLUMNS; `points` may be empty for a comment only)
    into the gradebook, as formgrader would store them; all rows or none. Returns the rows stored."""
    from nbgrader.api import Gradebook, MissingEntry

    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BadHandGrades(f"{path}: the header lacks {', '.join(missing)}; "
                                f"the first line must be: {','.join(CSV_COLUMNS)}")
        rows = list(reader)
    with Gradebook(course.db_url) as gb:
        for line, row in enumerate(rows, start=2):
            where = f"{path}, line {line}"
            try:
                grade = gb.find_grade(row["cell"], row["notebook"], course.assignment_id, row["student_id"])
            except MissingEntry:
                gb.db.rollback()
                raise BadHandGrades(f"{where}: no graded cell {row['cell']!r} of notebook {row['notebook']!r} "
                                    f"for student {row['student_id']!r}: grade the submission first, and copy "
                                    "the cell's name (its grade id) from formgrader or the feedback page") from None
            points = (row["points"] or "").strip()
            if points:
                try:
                    value = float(points)
                except ValueError:
                    value = -1.0
                if not 0 <= value <= grade.max_score:
                    gb.db.rollback()
                    raise BadHandGrades(f"{where}: points {points!r} for {row['cell']}: give a number from 0 "
                                        f"to {grade.max_score:g}")
                grade.manual_score, grade.needs_manual_grade = value, False
            if (row["comment"] or "").strip():
                try:
                    comment = gb.find_comment(row["cell"], row["notebook"], course.assignment_id, row["student_id"])
                except MissingEntry:
                    gb.db.rollback()
                    raise BadHandGrades(f"{where}: {row['cell']} is a test cell, which holds no comment: "
                                        "comment on the answer cell it checks") from None
                comment.manual_comment = row["comment"].strip()
        gb.db.commit()
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """`python -m autograder.results.hand_grades FILE [--course DIR]`: load a CSV of hand grades."""
    import argparse

    from autograder.config import Course

    parser = argparse.ArgumentParser(prog="python -m autograder.results.hand_grades", description=main.__doc__)
    parser.add_argument("csv", help=f"columns {','.join(CSV_COLUMNS)}; empty points: a comment only")
    parser.add_argument("--course", help="the course folder (default: course/ or $CS231N_COURSE_DIR)")
    args = parser.parse_args(argv)
    try:
        stored = import_csv(Course.at(args.course), args.csv)
    except (BadHandGrades, OSError) as error:
        print(f"hand grades not loaded: {error}")
        return 2
    print(f"{stored} hand grades loaded; run `python -m autograder feedback` and `export` to publish them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
