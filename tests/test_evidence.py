"""autograder.results.evidence on its own: which cells keep their points, and the grader's messages."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.results.evidence import (DID_NOT_RUN, FAILED, NOT_ANSWERED, NOT_CHECKABLE, confirm_with_functions,
                                         recheck_names)
from autograder.results.records import CellGrade, FunctionCase, NotebookGrades, Recheck


def _test_cell(grade_id, points, claim=None):
    meta = {"nbgrader": {"schema_version": 3, "grade": True, "solution": False, "locked": True,
                         "task": False, "grade_id": grade_id, "points": points}}
    if claim is not None:
        meta["cs231n"] = claim
    return new_code_cell("check()", metadata=meta)


@pytest.fixture
def source(tmp_path):
    nb = new_notebook(cells=[
        _test_cell("conv", 2, {"tasks": ["conv_forward_naive"]}),
        _test_cell("conv_and_relu", 2, {"tasks": ["conv_forward_naive", "relu_forward"]}),
        _test_cell("trained", 1, {"tasks": ["FullyConnectedNet"], "recheck": "fc_net_digits"}),
        _test_cell("table", 1, {"tasks": [], "recheck": "alexnet_table"}),
        _test_cell("state", 1, {"tasks": []}),
        _test_cell("unlabelled", 1),
        new_markdown_cell("answer", metadata={"nbgrader": {
            "schema_version": 3, "grade": True, "solution": True, "locked": False, "task": False,
            "grade_id": "why", "points": 1}}),
    ])
    nbformat.write(nb, tmp_path / "Nb.ipynb")
    return tmp_path


def _notebooks(scores, ran=(), **kw):
    return [NotebookGrades("Nb", tuple(CellGrade(name, max_score, score, ran=name not in ran, **kw)
                                       for name, (score, max_score) in scores.items()))]


def _case(task, passed):
    return FunctionCase(task, "a case", 1.0 if passed else 0.0, 1.0, passed)


FULL = {"conv": (2, 2), "conv_and_relu": (2, 2), "trained": (1, 1), "table": (1, 1), "state": (1, 1),
        "unlabelled": (1, 1)}
JUDGED = [_case("conv_forward_naive", True), _case("conv_forward_naive", True), _case("relu_forward", True),
          _case("relu_forward", False), _case("FullyConnectedNet", True)]


def _by_name(notebooks):
    return {g.name: g for g in notebooks[0].grades}


def test_points_stay_only_where_the_judge_confirms_every_task_and_the_recheck(source):
    notebooks, before = confirm_with_functions(_notebooks(FULL), JUDGED, source, [
        Recheck("fc_net_digits", True, "accuracy 1.00"), Recheck("alexnet_table", False, "out_shape is wrong")])
    grades = _by_name(notebooks)
    assert before == 8
    assert {k: g.auto_score for k, g in grades.items()} == {
        "conv": 2, "conv_and_relu": 0, "trained": 1, "table": 0, "state": 0, "unlabelled": 0}
    assert all(g.score_before_check == FULL[k][0] for k, g in grades.items())
    assert grades["conv"].message == "passed"
    assert grades["conv_and_relu"].message == "not confirmed: relu_forward failed 1 of 2 function cases"
    assert grades["table"].message == "not confirmed: the re-check alexnet_table failed: out_shape is wrong"
    assert grades["state"].message == grades["unlabelled"].message == NOT_CHECKABLE


def test_a_recheck_that_did_not_run_confirms_nothing(source):
    notebooks, _ = confirm_with_functions(_notebooks(FULL), JUDGED, source, [])
    grades = _by_name(notebooks)
    assert grades["trained"].auto_score == 0
    assert grades["trained"].message == "not confirmed: the re-check fc_net_digits did not run"


def test_partial_credit_failures_and_cells_that_never_ran_keep_nothing(source):
    notebooks, _ = confirm_with_functions(_notebooks({**FULL, "conv": (1.5, 2), "conv_and_relu": (0, 2)},
                                                     ran={"trained"}),
                                          JUDGED + [_case("relu_forward", True)], source,
                                          [Recheck("fc_net_digits", True, "")])
    grades = _by_name(notebooks)
    assert grades["conv"].auto_score == 0 and grades["conv"].message == FAILED
    assert grades["conv_and_relu"].message == FAILED
    assert grades["trained"].auto_score == 0 and grades["trained"].message == DID_NOT_RUN


def test_the_claims_come_from_the_source_not_the_students_copy(source, tmp_path):
    # a cell the source does not list (or a notebook it does not have) keeps nothing
    notebooks, _ = confirm_with_functions([NotebookGrades("Other", (CellGrade("conv", 2, 2),))], JUDGED, source, [])
    assert notebooks[0].grades[0].auto_score == 0


def test_written_answers_are_left_for_staff_unless_left_as_released(source):
    # unanswered: nbgrader's "No response." comment
    notebooks, _ = confirm_with_functions(_notebooks({"why": (0, 1)}, ran={"why"}, unanswered=True), JUDGED, source, [])
    grade = notebooks[0].grades[0]
    assert grade.auto_score == 0 and grade.message == NOT_ANSWERED and grade.score_before_check is None
    assert not grade.needs_manual_grade
    manual, _ = confirm_with_functions(_notebooks({"why": (None, 1)}, needs_manual_grade=True), JUDGED, source, [])
    assert manual[0].grades[0].auto_score is None and manual[0].grades[0].message == ""


@pytest.mark.parametrize("kernel_score", [1, 0])
def test_a_hand_graded_answer_nbgrader_scored_as_a_test_is_left_for_staff(source, kernel_score):
    """The submission flipped the answer's `solution` flag: nbgrader ran it as a test (all its
    points, or 0 when it raised) and asked no one to read it."""
    notebooks, _ = confirm_with_functions(_notebooks({"why": (kernel_score, 1)}), JUDGED, source, [])
    grade = notebooks[0].grades[0]
    assert grade.auto_score is None and grade.needs_manual_grade and grade.message == ""


def test_recheck_names_are_read_from_the_source(source):
    assert recheck_names(source) == ["alexnet_table", "fc_net_digits"]


def test_feedback_and_gradescope_show_the_graders_messages(source):
    from autograder.results.export import gradescope_results
    from autograder.results.feedback import render
    from autograder.results.store import GradeResult

    notebooks, _ = confirm_with_functions(_notebooks(FULL), JUDGED, source, [])
    result = GradeResult(student_id="alice", digest="0" * 64, notebooks=notebooks)
    page = render(result, "a2")
    assert "relu_forward failed 1 of 2 function cases" in page and "check()" not in page
    outputs = {t.name: t.output for t in gradescope_results(result).tests}
    assert outputs["Nb: conv"] == "passed" and outputs["Nb: state"] == NOT_CHECKABLE
