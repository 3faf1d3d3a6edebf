"""Issue 19, finding 5: a graded cell's nbgrader metadata comes from the source, never from the
submission, and an answer graded by hand never gets an automatic score.

One batch of the toy assignment with a code answer graded by hand (`by_hand`, 5 points, as the
PyTorch notebook's are), each student tampering with one thing, graded for real
(autograder.grading.grade.grade_all: nbgrader in the sandbox, the judge, autograder.results.evidence). Before
autograder.notebooks.nbgrader_fixes.OverwriteFromSource, `solution: false` on the answer earned its 5
points as a test and left nothing for staff (measured: docs/grading.md)."""
from types import SimpleNamespace

import nbformat
import pytest
from course_fixtures import PLAIN_DOUBLE, grades_by_name, toy_course, write_toy_submission
from nbformat.v4 import new_code_cell, new_markdown_cell

from autograder.budget import TimeBudget
from autograder.results.evidence import NOT_ANSWERED, NOT_CHECKABLE
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile_metadata")]
ANSWER = "print('my own training curve')"
FIELDS = ("grade", "solution", "locked", "task", "points")


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answered(nb):
    _cell(nb, "by_hand").source = ANSWER


def _tamper(edit):
    def change(nb):
        _answered(nb)
        edit(nb)
    return change


def _flag(grade_id, **fields):
    return _tamper(lambda nb: _cell(nb, grade_id).metadata.nbgrader.update(fields))


def _to_markdown(nb):
    for grade_id in ("by_hand", "test_relu"):
        cell = _cell(nb, grade_id)
        index = nb.cells.index(cell)
        nb.cells[index] = new_markdown_cell(cell.source, metadata=cell.metadata)


def _unlock_test(nb):
    cell = _cell(nb, "test_relu")
    cell.metadata.nbgrader.update(locked=False, solution=True)
    cell.source = "pass  # no test here"


def _swap_ids(nb):
    """The answer cell takes test_relu's grade id, and the test cell goes."""
    nb.cells.remove(_cell(nb, "test_relu"))
    _cell(nb, "by_hand").metadata.nbgrader["grade_id"] = "test_relu"


def _claim_tasks(nb):
    _cell(nb, "test_double").metadata["cs231n"] = {"tasks": ["relu_forward"], "recheck": ""}


def _unknown_ids(nb):
    meta = {"schema_version": 3, "grade": True, "solution": False, "locked": True, "task": False, "points": 50}
    nb.cells.append(new_code_cell("print('bonus')", metadata={"nbgrader": {**meta, "grade_id": "bonus"}}))
    nb.cells.append(new_code_cell("print('no id')", metadata={"nbgrader": dict(meta)}))


STUDENTS = {
    "honest": _answered,
    "solution-off": _flag("by_hand", solution=False),
    "grade-off": _flag("by_hand", grade=False),
    "grade-on": _flag("double", grade=True, points=100),
    "points": _tamper(lambda nb: [_cell(nb, g).metadata.nbgrader.update(points=100) for g in ("by_hand", "test_relu")]),
    "cell-type": _tamper(_to_markdown),
    "locked": _tamper(_unlock_test),
    "id-swap": _tamper(_swap_ids),
    "tasks": _tamper(_claim_tasks),
    "unknown-ids": _tamper(_unknown_ids),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all

    if not isolation_available():
        pytest.skip("the sandbox needs bubblewrap (`apt-get install bubblewrap`)")
    tmp = tmp_path_factory.mktemp("metadata")
    course, release = toy_course(tmp, code_answer=True)
    for name, edit in STUDENTS.items():
        write_toy_submission(release, tmp / "subs" / name, solution=PLAIN_DOUBLE, edit=edit)
    assert not [c.error for c in collect(tmp / "subs", course) if c.error]
    results, failures = grade_all(course, workers=2, progress=False, budget=TimeBudget(judge_case=5, cell=60))
    assert failures == {}
    released = {c.metadata.nbgrader.grade_id: c for c in nbformat.read(release / "Toy.ipynb", as_version=4).cells
                if "nbgrader" in c.metadata}
    return SimpleNamespace(course=course, results=results, released=released)


def _grades(graded, student):
    result = graded.results[student]
    assert result.nbgrader_ok, result.nbgrader_log
    return grades_by_name(result)


def _left_for_staff(graded, student, grade_id="by_hand"):
    from nbgrader.api import Gradebook

    grade = _grades(graded, student)[grade_id]
    assert grade.auto_score is None and grade.needs_manual_grade, (student, grade)
    with Gradebook(graded.course.db_url) as gb:  # what formgrader shows staff
        stored = gb.find_grade(grade_id, "Toy", "a2", student)
        assert stored.auto_score is None and stored.needs_manual_grade, student


def _as_released(grades):
    """Every student's test cells scored as the source says: test_relu's 3 confirmed points, the
    unconfirmable test_double none (its kernel verdict kept aside), the unchanged written answer 0."""
    assert grades["test_relu"].max_score == 3 and grades["test_relu"].auto_score == 3
    assert grades["test_double"].max_score == 2 and grades["test_double"].auto_score == 0
    assert grades["why_relu"].auto_score == 0 and grades["why_relu"].message == NOT_ANSWERED


def test_every_submission_is_graded_and_every_graded_cell_has_the_release_s_metadata(graded):
    assert set(graded.results) == set(STUDENTS)
    for student in STUDENTS:
        nb = nbformat.read(graded.course.step_dir("autograded", student) / "Toy.ipynb", as_version=4)
        ids = [c.metadata["nbgrader"].get("grade_id") for c in nb.cells if "nbgrader" in c.metadata]
        assert sorted(ids) == sorted(graded.released), (student, ids)
        for cell in nb.cells:
            assert "cs231n" not in cell.metadata, student
            if "nbgrader" in cell.metadata:
                source = graded.released[cell.metadata.nbgrader.grade_id]
                assert cell.cell_type == source.cell_type, student
                assert ({f: cell.metadata.nbgrader.get(f) or False for f in FIELDS}  # absent: False
                        == {f: source.metadata.nbgrader.get(f) or False for f in FIELDS}), (student, cell.metadata)


def test_the_untampered_answer_is_left_for_staff(graded):
    _as_released(_grades(graded, "honest"))
    _left_for_staff(graded, "honest")


@pytest.mark.parametrize("student", ["solution-off", "grade-off", "points", "cell-type"])
def test_a_flag_flipped_on_the_hand_graded_answer_earns_nothing_and_leaves_it_for_staff(graded, student):
    grades = _grades(graded, student)
    _as_released(grades)
    assert grades["by_hand"].max_score == 5
    _left_for_staff(graded, student)


def test_a_solution_cell_made_a_grade_cell_earns_nothing(graded):
    grades = _grades(graded, "grade-on")
    assert "double" not in grades
    _as_released(grades)
    _left_for_staff(graded, "grade-on")


def test_a_test_cell_unlocked_and_made_an_answer_still_runs_as_the_test(graded):
    grades = _grades(graded, "locked")
    _as_released(grades)
    assert grades["test_relu"].needs_manual_grade is False


def test_an_answer_given_a_test_s_grade_id_becomes_that_test_and_the_answer_cell_comes_back(graded):
    grades = _grades(graded, "id-swap")
    _as_released(grades)
    _left_for_staff(graded, "id-swap")  # the restored answer cell, as released, says it was missing
    nb = nbformat.read(graded.course.step_dir("autograded", "id-swap") / "Toy.ipynb", as_version=4)
    assert _cell(nb, "by_hand").source.startswith("# This cell (id:by_hand) was missing from the submission")
    assert _cell(nb, "test_relu").source == graded.released["test_relu"].source


def test_tasks_claimed_in_the_submission_confirm_nothing(graded):
    grades = _grades(graded, "tasks")
    _as_released(grades)
    assert grades["test_double"].score_before_check == 2
    assert grades["test_double"].message == NOT_CHECKABLE


def test_cells_claiming_unknown_or_no_grade_ids_are_plain_cells(graded):
    grades = _grades(graded, "unknown-ids")
    assert set(grades) == set(graded.released) - {"double"}
    _as_released(grades)
    _left_for_staff(graded, "unknown-ids")
