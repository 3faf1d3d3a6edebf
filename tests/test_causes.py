"""Causes first, and the class at a glance (issue 21, deliverables 3 and 4), for a real small
class of the toy assignment graded by the product's pipeline.

A student's feedback page opens with what went wrong, in the grader's words: a notebook that
loops (at which cell, the limit), a cell that raises (the exception's name, never its message),
a layers.py with a SyntaxError (file, line, exception, said once), a notebook that cannot be
read; checks in notebook order under the source's headings. `export`'s report.html, opened in
Chromium, shows the class: its pictures load, who was not graded and why, who ran out of time,
the hardest tasks first."""
import html
import re
import shutil

import pytest
from course_fixtures import write_toy_submission
from test_browser import browser  # noqa: F401

from autograder.budget import TimeBudget
from autograder.config import Course
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = pytest.mark.slow

SECRET = "the-kernel-wrote-this-7731"
CELL_TIMEOUT = 8


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(course, {student: GradeResult}) of a graded class of four."""
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all
    from autograder.release.build import build_release
    from course_fixtures import make_toy_source

    if not isolation_available():
        pytest.skip("the sandbox needs bubblewrap (`apt-get install bubblewrap`)")
    tmp = tmp_path_factory.mktemp("causes")
    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}",
                    source_root=make_toy_source(tmp / "src"))
    shutil.copyfile(course.source / "Toy.ipynb", course.source / "Second.ipynb")  # a notebook to garble
    release = build_release(course)
    subs = tmp / "subs"
    write_toy_submission(release, subs / "looper", cells=["while True:\n    pass"])
    write_toy_submission(release, subs / "raiser", cells=[f"raise ValueError('{SECRET}')"])
    write_toy_submission(release, subs / "typo", layers="\n\ndef broken(:\n    pass\n")
    write_toy_submission(release, subs / "garbled")
    (subs / "garbled" / "Second.ipynb").write_text('{"cells": [')
    assert not [c.error for c in collect(subs, course) if c.error]
    results, failures = grade_all(course, workers=1, force=True, progress=False,
                                  budget=TimeBudget(judge_case=5, cell=CELL_TIMEOUT))
    assert failures == {}, failures
    return course, results


@pytest.fixture(scope="module")
def pages(graded):
    """{student: (feedback page text, GradeResult)} of the graded class."""
    from autograder.results.feedback import write_feedback

    course, results = graded
    return {sid: (path.read_text(), results[sid]) for sid, path in write_feedback(course).items()}


def _causes(page):
    box = re.search(r'<section id="causes".*?</section>', page, re.S).group(0)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in re.findall(r"<li>(.*?)</li>", box, re.S)]


def _row(page, check):
    return re.search(rf"<td>{check}</td>.*?</tr>", page, re.S).group(0)


def test_a_looping_notebook_says_where_it_ran_out_of_time_and_the_rest_did_not_run(pages):
    page, result = pages["looper"]
    assert result.timed_out == ["Toy"]
    causes = _causes(page)
    assert causes[0].startswith('Toy ran out of time at cell 4 (at or after double, in "Toy assignment")'), causes
    assert f"a cell may run {CELL_TIMEOUT} s" in causes[0]
    assert "did not run" in _row(page, "test_relu") and "failed" not in _row(page, "test_relu")
    assert page.index("What went wrong") < page.index("<h2>Notebooks</h2>")


def test_an_error_is_named_by_its_exception_never_its_message(pages):
    page, _ = pages["raiser"]
    causes = _causes(page)
    assert any(c.startswith("Toy: the first error was in cell 4 (at or after double") and c.count("ValueError") == 1
               for c in causes), causes
    assert SECRET not in page


def test_a_package_file_that_does_not_import_is_said_once_with_its_line(pages):
    page, result = pages["typo"]
    causes = _causes(page)
    said = [c for c in causes if "does not import" in c]
    broken = [f for f in result.functions if "does not import" in f.message or "raised SyntaxError" in f.message]
    assert len(said) == 1 and broken, causes
    assert re.fullmatch(r"the file cs231n/layers\.py does not import: SyntaxError at line \d+; the \d+ function tests "
                        r"that need it could not run\.", said[0]), said
    functions = page[page.index("<h2>Function tests</h2>"):]
    assert "SyntaxError" not in functions  # not once a case in the function table
    assert f"{len(broken)} cases could not run because a file does not import" in page


def test_an_unreadable_notebook_says_so_first(pages):
    page, _ = pages["garbled"]
    causes = _causes(page)
    assert causes[0].startswith("Second could not be read: it is not valid JSON"), causes
    assert "open it in Jupyter" in causes[0]  # and how to fix it


def test_checks_are_in_notebook_order_under_the_sources_headings(pages):
    page, _ = pages["raiser"]
    table = page[page.index("<h3>Toy</h3>"):]
    order = [table.index(f"<td>{check}</td>") for check in ("test_double", "test_relu", "why_relu")]
    assert order == sorted(order)  # by name it would be the same, so the heading is checked too
    assert table.index("Toy assignment") < order[0]


def test_the_class_report_opened_in_a_browser(graded, browser, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    from autograder.results.export import export
    from autograder.results.store import NotGraded, record_not_graded
    from autograder.results.scale import course_scale

    course, results = graded
    # a fifth student the grader failed on, stored as the coordinator stores it
    (course.root / "submitted" / "unlucky").mkdir(parents=True)
    assert record_not_graded(course, NotGraded("unlucky", "f" * 64, "disk full writing /scratch"))
    report = export(course, tmp_path / "out").parent / "report.html"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(report.as_uri())
        expect(page.locator("#counts")).to_contain_text("4 graded, 1 not graded, 1 ran out of time")
        for picture in ("#histogram", "#tasks", "#time"):  # drawn by matplotlib, embedded, shown
            assert page.locator(picture).evaluate("img => img.complete && img.naturalWidth > 100"), picture
        expect(page.locator("#not-graded + table")).to_contain_text("unlucky")
        expect(page.locator("#not-graded + table")).to_contain_text("disk full writing /scratch")
        expect(page.locator("#out-of-time + table")).to_contain_text("looper")
        total = course_scale(course.source).required  # Toy and Second: 6 each
        expect(page.locator("#enter")).to_contain_text(f"LMS: enter {total:g} as the maximum")
        rates = page.locator("#task-rates tr td:nth-child(2)").all_inner_texts()
        values = [int(r.rstrip("%")) for r in rates]
        assert values == sorted(values) and values[0] < 100 == values[-1]  # hardest first
        row = page.locator("#students tr", has_text="typo")
        expect(row).to_contain_text("cs231n/layers.py does not import: SyntaxError")
    finally:
        context.close()
