"""One scale (issue 21, deliverable 2): the total the source notebooks' graded cells add up to is
the one the student README, every notebook's header, the feedback page, grades.csv, the
summary and Gradescope state; extra credit adds on top; function tests carry no points."""
import json
import re

import nbformat
import pytest
from markupsafe import escape

from autograder.config import ROOT
from autograder.results.evidence import NOT_ANSWERED, cell_claims
from autograder.results.records import CellGrade, FunctionCase, NotebookGrades
from autograder.results.store import GradeResult
from autograder.results.scale import FUNCTIONS_SENTENCE, Scale, course_scale, where_to_enter

SOURCE = ROOT / "assignments" / "a2"
README = ROOT / "autograder" / "release" / "student" / "README.md"


@pytest.fixture(scope="module")
def scale():
    return course_scale(SOURCE)


def full_marks(written="pending"):
    """A GradeResult of the real assignment with every autograded check passed (extra credit too)
    and every written answer pending (or not answered), built from the source's graded cells."""
    claims = cell_claims(SOURCE)
    notebooks = []
    for path in sorted(SOURCE.glob("*.ipynb")):
        grades = []
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if not meta.get("grade"):
                continue
            manual = claims[path.stem][meta["grade_id"]].manual
            pending = manual and written == "pending"
            grades.append({"name": meta["grade_id"], "max_score": float(meta["points"]), "needs_manual_grade": pending,
                           "auto_score": None if pending else (0.0 if manual else float(meta["points"])),
                           "message": NOT_ANSWERED if manual and not pending else "passed"})
        notebooks.append({"notebook": path.stem, "grades": grades})
    functions = [{"task": "relu_forward", "case": "basic", "points": 1.0, "max_points": 1.0, "passed": True,
                  "message": ""}]
    return GradeResult.from_json(json.dumps({"student_id": "ada", "digest": "0" * 64, "notebooks": notebooks,
                                             "functions": functions}))


def header_line(notebook, scale: Scale):
    """The sentence a notebook's first cell states its points with."""
    required, extra = scale.notebooks[notebook]
    total = f"the assignment's {scale.required:g}"
    if required and extra:
        return f"**Points:** {required:g} of {total} points, and up to {extra:g} points of extra credit on top."
    if required:
        return f"**Points:** {required:g} of {total} points."
    return f"**Points:** none of {total}: up to {extra:g} points of extra credit on top of them."


def test_the_student_readme_states_the_sources_total_and_each_notebooks_points(scale):
    text = README.read_text()
    assert re.search(r"worth \*\*(\d+) points\*\*", text).group(1) == f"{scale.required:g}"
    table = dict(re.findall(r"^\| (\w+) \| (\d+) \|$", text, re.M))
    assert table == {nb: f"{req:g}" for nb, (req, _) in scale.notebooks.items() if req}
    assert f"adds up to {scale.extra:g} points to the {scale.required:g}" in text


@pytest.mark.parametrize("path", sorted(SOURCE.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_header_states_its_part_of_the_one_total(path, scale):
    first = nbformat.read(path, as_version=4).cells[0].source
    assert header_line(path.stem, scale) in first
    assert f"{scale.required:g} points" in header_line(path.stem, scale) or not scale.notebooks[path.stem][0]


def test_feedback_csv_summary_and_gradescope_state_the_same_total(scale):
    from autograder.results.export import gradescope_results, row
    from autograder.results.feedback import render
    from autograder.results.summary import summarize

    result = full_marks()
    page = render(result, "a2")
    grades = [g for _, g in result.grades()]
    expected = sum(g.auto_score or 0 for g in grades)  # every autograded point, written answers pending
    extra = sum(g.auto_score or 0 for g in grades if g.is_extra)
    assert 0 < extra < scale.extra and expected == scale.autograded + extra
    assert f"Score: <strong>{expected:g}</strong> of {scale.required:g}, {extra:g} of it extra credit" in page
    assert page.count(str(escape(FUNCTIONS_SENTENCE))) == 1
    csv_row = row(result)
    assert (csv_row["score"], csv_row["max_score"], csv_row["extra_credit"]) == (expected, scale.required, extra)
    table = summarize({"ada": result}, {}, 1.0)
    assert any(re.match(rf"ada\s+{expected:.1f}\s+{scale.required:g}\s+{extra:.1f}\s", line) for line in table)
    for written in ("pending", "not answered"):
        tests = gradescope_results(full_marks(written)).tests
        # every student's maxima add up to the autograder's share; written answers are Gradescope's manual question
        assert sum(t.max_score for t in tests if "extra_" not in t.name) == scale.autograded
        assert all(t.max_score == 0 for t in tests if "function" in t.tags)
    assert where_to_enter(scale)[2].endswith(f"({scale.autograded:g} + {scale.written:g} = {scale.required:g})")


def test_a_notebook_check_keeps_its_points_only_with_its_functions_confirmed():
    """What the one sentence on the page says is what evidence does: the same cell, confirmed or not."""
    from autograder.results.evidence import confirm_with_functions

    claims = cell_claims(SOURCE)
    nb, cell = next((nb, gid) for nb, cells in claims.items() for gid, c in cells.items() if c.tasks and not c.recheck)
    tasks = claims[nb][cell].tasks
    for passed, kept in ((True, 1.0), (False, 0.0)):
        functions = [FunctionCase(t, "a case", float(passed), 1.0, passed) for t in tasks]
        notebooks, _ = confirm_with_functions([NotebookGrades(nb, (CellGrade(cell, 1.0, 1.0),))], functions, SOURCE)
        assert notebooks[0].grades[0].auto_score == kept
