"""The gradebook's record of each student: graded (a GradeResult row of RESULTS_TABLE whose digest
is the submission's), not graded (a NotGraded row of NOT_GRADED_TABLE saying why), or pending
(neither); each change of state one transaction. Also a result's scores and problems, the one
place that counts them. docs/grading.md, "The life of one student's grading".
"""
from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from autograder.results.records import GradeResult, NotGraded, Parts

if TYPE_CHECKING:
    from autograder.config import Course

RESULTS_TABLE = "cs231n_results"
NOT_GRADED_TABLE = "cs231n_not_graded"


def scores(result: GradeResult) -> tuple[float, float, Parts]:
    """(score, max_score, parts) of a GradeResult on the assignment's one scale: the notebooks'
    points, max_score the required ones, extra credit (extra_ cells) adding to the score only; a
    hand grade (`hand_score`, autograder.results.hand_grades) counts in place of the automatic score.
    Function tests carry no points of their own: a notebook check keeps its points only when the
    judge confirmed the functions it checks (autograder.results.evidence); parts still report them."""
    nb_score = nb_max = extra = extra_max = 0.0
    manual_pending = 0
    for _, g in result.grades():
        if g.needs_manual_grade:
            manual_pending += 1
        nb_score += g.earned
        if g.is_extra:
            extra, extra_max = extra + g.earned, extra_max + g.max_score
        else:
            nb_max += g.max_score
    fn_score = sum(f.points for f in result.functions)
    fn_max = sum(f.max_points for f in result.functions)
    return nb_score, nb_max, Parts(nb_score, nb_max, extra, extra_max, fn_score, fn_max, manual_pending,
                                   len(result.functions), sum(1 for f in result.functions if f.passed))


def problems(result: GradeResult) -> list[str]:
    """What went wrong in grading a GradeResult, as sentences for the student (one place, so
    that feedback, grades.csv and Gradescope say the same)."""
    found = [] if result.nbgrader_ok else ["some notebooks could not be run to the end"]
    if result.out_of_space:
        found.append(f"{', '.join(result.out_of_space)} filled the disk space a notebook's kernel may write to, "
                     "so its writes past that failed: write less, or delete files once used")
    return found


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------
def _tables() -> tuple[Any, Any]:
    from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

    meta = MetaData()

    def table(name: str, record: str, at: str) -> Table:  # one row per (assignment, student): its record and when
        return Table(name, meta, Column("assignment_id", String(128), primary_key=True),
                     Column("student_id", String(128), primary_key=True),
                     Column("digest", String(64), nullable=False),
                     Column(record, Text, nullable=False), Column(at, DateTime, nullable=False))

    return table(RESULTS_TABLE, "result", "graded_at"), table(NOT_GRADED_TABLE, "record", "failed_at")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class _Store:
    """The course gradebook with our two tables made; `with _Store(course) as (gb, results,
    not_graded):`."""

    def __init__(self, course: Course) -> None:
        self.course = course

    def __enter__(self) -> tuple[Any, Any, Any]:
        from nbgrader.api import Gradebook

        self.gb = Gradebook(self.course.db_url)
        self.gb.__enter__()
        results, not_graded = _tables()
        bind = self.gb.db.get_bind()
        results.create(bind, checkfirst=True)
        not_graded.create(bind, checkfirst=True)
        return self.gb, results, not_graded

    def __exit__(self, *exc: object) -> Any:
        return self.gb.__exit__(*exc)


def _rows(course: Course, which: str) -> list[Any]:
    with _Store(course) as (gb, results, not_graded):
        table = results if which == "results" else not_graded
        return gb.db.execute(table.select().where(table.c.assignment_id == course.assignment_id)).fetchall()


def merged_digests(course: Course) -> dict[str, str]:
    """{student_id: digest} of every graded student (not graded ones are not in it)."""
    return {row.student_id: row.digest for row in _rows(course, "results")}


def stored_results(course: Course) -> dict[str, GradeResult]:
    """{student_id: GradeResult} of every graded student."""
    return {row.student_id: GradeResult.from_json(row.result) for row in _rows(course, "results")}


def not_graded(course: Course) -> dict[str, NotGraded]:
    """{student_id: NotGraded} of every student whose last grading failed on the grader's side
    (and who has no grade of that submission)."""
    return {row.student_id: NotGraded.from_json(row.record) for row in _rows(course, "not_graded")}


def merge_result(course: Course, result: GradeResult) -> None:
    """Store one student's GradeResult (nbgrader's grades too) in a single transaction; a
    not-graded record of the student goes."""
    sid, aid = result.student_id, course.assignment_id
    with _Store(course) as (gb, results, not_graded_table):
        gb.update_or_create_student(sid)
        gb.update_or_create_submission(aid, sid)
        for nb, g in result.grades():
            grade = gb.find_grade(g.name, nb.notebook, aid, sid)
            grade.auto_score = g.auto_score
            grade.needs_manual_grade = g.needs_manual_grade
        for table in (results, not_graded_table):
            gb.db.execute(table.delete().where((table.c.assignment_id == aid) & (table.c.student_id == sid)))
        gb.db.execute(results.insert().values(assignment_id=aid, student_id=sid, digest=result.digest,
                                              result=result.to_json(), graded_at=_now()))
        gb.db.commit()


def record_not_graded(course: Course, failure: NotGraded) -> bool:
    """Store a NotGraded in a single transaction. A stored grade of the same submission stays
    (it is still right: a forced regrade failed); a grade of an older submission goes, so that
    nothing shows a score for a submission that was not graded. Returns True when the failure
    was stored, False when a grade of the same submission was kept instead."""
    sid, aid = failure.student_id, course.assignment_id
    with _Store(course) as (gb, results, not_graded_table):
        mine = (results.c.assignment_id == aid) & (results.c.student_id == sid)
        row = gb.db.execute(results.select().where(mine)).fetchone()
        if row is not None and row.digest == failure.digest:
            gb.db.rollback()
            return False
        gb.db.execute(results.delete().where(mine))
        gb.db.execute(not_graded_table.delete().where((not_graded_table.c.assignment_id == aid)
                                                      & (not_graded_table.c.student_id == sid)))
        gb.db.execute(not_graded_table.insert().values(assignment_id=aid, student_id=sid, digest=failure.digest,
                                                       record=failure.to_json(), failed_at=_now()))
        gb.db.commit()
        if row is not None:  # nbgrader's own grades of the older submission go too
            _remove_nbgrader_submission(gb, aid, sid)
        return True


def _remove_nbgrader_submission(gb: Any, assignment_id: str, student_id: str) -> None:
    """nbgrader's remove_submission commits as it goes: after our transaction, not inside it
    (grades.csv and the feedback read our tables)."""
    from nbgrader.api import MissingEntry

    try:
        gb.remove_submission(assignment_id, student_id)
    except MissingEntry:
        pass
