"""Results of grading: a result's scores, and their storage in the gradebook (nbgrader's grades
plus our own table holding each whole result), one transaction per student."""
import json

RESULTS_TABLE = "cs231n_results"


def scores(result):
    """(score, max_score, parts) of a result: notebooks (extra_ cells add to the score only)
    plus function tests."""
    nb_score = nb_max = 0.0
    manual_pending = 0
    for nb in result["notebooks"]:
        for g in nb["grades"]:
            if g["needs_manual_grade"]:
                manual_pending += 1
            nb_score += g["auto_score"] or 0.0
            if not g["name"].startswith("extra_"):
                nb_max += g["max_score"]
    fn_score = sum(f["points"] for f in result["functions"])
    fn_max = sum(f["max_points"] for f in result["functions"])
    parts = {"notebook_score": nb_score, "notebook_max": nb_max, "function_score": fn_score,
             "function_max": fn_max, "manual_pending": manual_pending}
    return nb_score + fn_score, nb_max + fn_max, parts


def _results_table():
    from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

    meta = MetaData()
    return Table(RESULTS_TABLE, meta,
                 Column("assignment_id", String(128), primary_key=True),
                 Column("student_id", String(128), primary_key=True),
                 Column("digest", String(64), nullable=False),
                 Column("result", Text, nullable=False),
                 Column("graded_at", DateTime, nullable=False))


def merged_digests(course):
    """{student_id: digest} of every result already merged into the gradebook."""
    from nbgrader.api import Gradebook

    table = _results_table()
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        rows = gb.db.execute(table.select().where(table.c.assignment_id == course.assignment_id)).fetchall()
    return {row.student_id: row.digest for row in rows}


def stored_results(course):
    """{student_id: result dict} of every merged result."""
    from nbgrader.api import Gradebook

    table = _results_table()
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        rows = gb.db.execute(table.select().where(table.c.assignment_id == course.assignment_id)).fetchall()
    return {row.student_id: json.loads(row.result) for row in rows}


def merge_result(course, result):
    """Write one student's result into the gradebook in a single transaction."""
    import datetime

    from nbgrader.api import Gradebook

    table = _results_table()
    sid, aid = result["student_id"], course.assignment_id
    stored = {k: v for k, v in result.items() if k not in ("scratch", "autograded_dir")}
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        gb.update_or_create_student(sid)
        gb.update_or_create_submission(aid, sid)
        for nb in result["notebooks"]:
            for g in nb["grades"]:
                grade = gb.find_grade(g["name"], nb["notebook"], aid, sid)
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
        gb.db.execute(table.delete().where((table.c.assignment_id == aid) & (table.c.student_id == sid)))
        gb.db.execute(table.insert().values(assignment_id=aid, student_id=sid, digest=result["digest"],
                                            result=json.dumps(stored),
                                            graded_at=datetime.datetime.now(datetime.timezone.utc)))
        gb.db.commit()
