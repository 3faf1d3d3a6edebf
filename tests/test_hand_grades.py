"""Hand grades reach the student (issue 21, deliverable 1).

The toy class is graded by the product's pipeline (collect, grade_all); its written answer
waits for staff. An instructor grades it as nbgrader users do, in formgrader's Manual Grading
page in Chromium (score and comment typed into the page, saved by formgrader's own script), and
`export` and the feedback page then count the point and show the comment. A CSV of hand grades
(for courses without formgrader) loads into the same gradebook, and a bad one is refused whole.
"""
import csv
import shutil

import pytest
from course_fixtures import toy_course, write_server_config, write_toy_submission
from test_browser import _require_browser, browser, page, serve  # noqa: F401

from autograder.budget import TimeBudget
from autograder.config import Course
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = pytest.mark.slow

STUDENT = "ada"
ANSWER = "Its slope is 1 for positive inputs and 0 for negative ones."
COMMENT = "Right, and well put: the kink at 0 is the only subtle point."


def _answer(nb):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "why_relu":
            cell.source = ANSWER


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course with one student's toy submission graded by grade_all (written answer waiting)."""
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all

    if not isolation_available():
        pytest.skip("the sandbox needs bubblewrap (`apt-get install bubblewrap`)")
    tmp = tmp_path_factory.mktemp("hand")
    course, release = toy_course(tmp)
    write_toy_submission(release, tmp / "subs" / STUDENT, edit=_answer)
    assert not [c.error for c in collect(tmp / "subs", course) if c.error]
    results, failures = grade_all(course, workers=1, force=True, progress=False, budget=TimeBudget(judge_case=3, cell=30))
    assert failures == {} and STUDENT in results, failures
    shutil.copyfile(tmp / "course" / "gradebook.db", tmp / "graded.db")  # as graded, before any hand grade
    return course


def _export(course, out):
    from autograder.results.export import export

    with open(export(course, out), newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _copy(course, tmp_path):
    """The course as graded (no hand grade yet) with a gradebook of its own, for a test that
    writes to it."""
    db = tmp_path / "gradebook.db"
    shutil.copyfile(course.root.parent / "graded.db", db)
    return Course(root=course.root, db_url=f"sqlite:///{db}", source_root=course.source_root)


def test_a_written_answer_graded_in_formgrader_reaches_grades_csv_and_the_feedback_page(graded, browser, tmp_path):  # noqa: F811
    from nbgrader.api import Gradebook
    from playwright.sync_api import expect

    from autograder.results.feedback import write_feedback

    _require_browser()
    before = _export(graded, tmp_path / "before")[STUDENT]
    assert before["manual_pending"] == "1"
    write_server_config(graded)
    with serve(graded, tmp_path) as (base, token):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/lab?token={token}")  # the login cookie then covers formgrader too
        with Gradebook(graded.db_url) as gb:
            submission = gb.find_submission_notebook("Toy", graded.assignment_id, STUDENT).id
        page.goto(f"{base}/formgrader/submissions/{submission}/")
        expect(page.get_by_text(ANSWER).first).to_be_visible()
        # formgrader binds its save handlers once its scripts have loaded the grades and comments
        page.wait_for_load_state("networkidle")
        expect(page.locator("textarea#why_relu-comment")).to_be_editable()
        expect(page.locator("input.score#why_relu")).to_be_editable()
        with page.expect_response(lambda r: "/api/comment/" in r.url and r.request.method == "PUT") as saved:
            page.locator("textarea#why_relu-comment").fill(COMMENT)
            page.locator("textarea#why_relu-comment").press("Tab")  # formgrader saves on change
        assert saved.value.ok
        with page.expect_response(lambda r: "/api/grade/" in r.url and r.request.method == "PUT") as saved:
            page.locator("input.score#why_relu").fill("1")
            page.locator("input.score#why_relu").press("Tab")
        assert saved.value.ok
        context.close()

    after = _export(graded, tmp_path / "after")[STUDENT]
    assert after["manual_pending"] == "0"
    assert float(after["score"]) == float(before["score"]) + 1
    assert after["max_score"] == before["max_score"]
    html = write_feedback(graded, [STUDENT])[STUDENT].read_text()
    assert "1 / 1 graded by hand" in html and COMMENT in html
    assert "waiting to be graded by hand" not in html


def test_hand_grades_from_a_csv_are_counted_and_a_bad_csv_is_refused_whole(graded, tmp_path):
    from autograder.results.hand_grades import BadHandGrades, import_csv, read_gradebook

    course = _copy(graded, tmp_path)
    before = _export(course, tmp_path / "before")[STUDENT]
    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,notebook,cell,points,comment\n"
                   f"{STUDENT},Toy,why_relu,1,fine\n"
                   f"{STUDENT},Toy,why_relu,7,too many\n")
    with pytest.raises(BadHandGrades, match=r"line 3: points '7' for why_relu: give a number from 0 to 1"):
        import_csv(course, bad)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(f"student_id,notebook,cell,points,comment\n{STUDENT},Toy,why_sigmoid,1,\n")
    with pytest.raises(BadHandGrades, match="no graded cell 'why_sigmoid'"):
        import_csv(course, unknown)
    assert read_gradebook(course) == {}  # nothing of a refused file was stored

    good = tmp_path / "good.csv"
    good.write_text(f"student_id,notebook,cell,points,comment\n{STUDENT},Toy,why_relu,0.5,\"half: say why\"\n")
    assert import_csv(course, good) == 1
    after = _export(course, tmp_path / "after")[STUDENT]
    assert float(after["score"]) == float(before["score"]) + 0.5 and after["manual_pending"] == "0"
