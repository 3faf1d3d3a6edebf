"""The course in a real browser: Debian's headless Chromium, driven by Playwright.

A student opens the release notebook in JupyterLab and runs its first cells: the setup cell's
output shows, and the first check stops at the NotImplementedError of the stub, as it should.
An instructor opens nbgrader's formgrader and sees the assignment. A student opens a feedback
page: the score and the checks' names show, no test source does, and a message full of markup
is shown as text, not run.

Everything runs on 127.0.0.1 in tmp_path: a release of the toy assignment
(tests/course_fixtures.py), a JupyterLab server in its own process group (always stopped, with
its kernels), and Chromium with no network of its own. Chromium comes from Debian
(`.ci/install-browser`, which `make install-dev` runs); Playwright never downloads a browser
here. Without Chromium the tests skip and say what to run.
"""
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from autograder.config import Course
from course_fixtures import HIDDEN_LINE, SOLUTION_LINE, toy_notebook
from process_tree import descendants
from services import stop_group

pytestmark = pytest.mark.slow

BROWSER = os.environ.get("CS231N_BROWSER", "/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-quic", "--no-proxy-server"]
SETUP_PRINT = "setup done: relu_forward and check_close imported"
SERVER_START_TIMEOUT = 60  # seconds until JupyterLab answers
UI_TIMEOUT_MS = 30_000  # longest any one page element may take to appear
INSTALL_HINT = ("run `.ci/install-browser` as root (or `sudo apt-get install -y chromium`), "
                "or set CS231N_BROWSER to a Chromium binary")


def _require_browser():
    if not os.access(BROWSER, os.X_OK):
        pytest.skip(f"no Chromium at {BROWSER}: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the Python package playwright is missing: pip install -r requirements-dev.txt")


# --------------------------------------------------------------------------------------------
# The course: a toy release, and nbgrader's config pointing at it
# --------------------------------------------------------------------------------------------
def _toy_source(source_root):
    """The toy assignment, whose setup cell also prints, so running it shows an output."""
    import nbformat

    nb = toy_notebook()
    nb.cells[1].source += f"\nprint({SETUP_PRINT!r})"
    folder = source_root / "a2"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "Toy.ipynb")
    return source_root


def _write_nbgrader_config(course):
    """nbgrader's formgrader reads nbgrader_config.py from the server's working directory."""
    (course.root / "exchange").mkdir(exist_ok=True)  # nbgrader's release/collect folder, in tmp
    (course.root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        "c.CourseDirectory.course_id = 'cs231n'\n"
        f"c.CourseDirectory.root = {str(course.root)!r}\n"
        f"c.CourseDirectory.source_directory = {str(course.source_root)!r}\n"
        f"c.CourseDirectory.db_url = {course.db_url!r}\n"
        f"c.Exchange.root = {str(course.root / 'exchange')!r}\n")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with the toy release in release/a2 and an nbgrader_config.py of its own."""
    from autograder.release.build import build_release

    _require_browser()  # before building anything
    tmp = tmp_path_factory.mktemp("browser-course")
    root = tmp / "course"
    course = Course(root=root, db_url=f"sqlite:///{root / 'gradebook.db'}",
                    source_root=_toy_source(tmp / "source"))
    build_release(course)
    _write_nbgrader_config(course)
    return course


# --------------------------------------------------------------------------------------------
# JupyterLab on 127.0.0.1, in its own process group, always stopped
# --------------------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stop(proc, grace=10):
    """End the server's group (SIGTERM: it shuts its kernels down), then whatever it started in
    sessions of its own."""
    if proc.poll() is None:
        below = descendants(proc.pid)
        stop_group(proc, grace, grace)
        _kill(below, signal.SIGKILL)


def _answers(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start_jupyter(course, tmp, token):
    port = _free_port()
    home = tmp / "jupyter-home"
    # No PYTHONPATH: the kernel must import the release's cs231n (beside the notebook), nothing else.
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython"),
           "CS231N_DATASET": "digits", "MPLBACKEND": "Agg"}
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--ServerApp.token={token}", "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={course.root}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    # No "get notified about Jupyter news?" toast over the page (and no request for the news).
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = open(tmp / f"jupyter-{port}.log", "wb")
    proc = subprocess.Popen(argv, cwd=course.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if _answers(f"{base}/api/status?token={token}"):
            return proc, base, Path(log.name)
        time.sleep(0.2)
    _stop(proc)
    return None, base, Path(log.name)


@pytest.fixture(scope="module")
def jupyter(course, tmp_path_factory):
    """(base_url, token) of a JupyterLab whose root is the course folder."""
    _require_browser()
    with serve(course, tmp_path_factory.mktemp("jupyter")) as running:
        yield running


@contextlib.contextmanager
def serve(course, tmp):
    """(base_url, token) of a JupyterLab (with formgrader) whose root is the course folder and
    whose working directory, so whose nbgrader_config.py, is too; stopped on leaving."""
    token = secrets.token_hex(16)
    for _ in range(3):  # the free port may be taken between choosing it and binding it
        proc, base, log = _start_jupyter(course, tmp, token)
        if proc is not None:
            break
    else:
        pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n"
                    + log.read_text(errors="replace")[-3000:])
    print(f"JupyterLab at {base}, its log in {log}")  # shown with a failure
    try:
        yield base, token
    finally:
        _stop(proc)


# --------------------------------------------------------------------------------------------
# Chromium
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=BROWSER, headless=True, args=BROWSER_ARGS,
                                      timeout=UI_TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    # Only this machine: any request to another host is refused, so a page that reaches out fails.
    context.route(lambda url: not url.startswith(("http://127.0.0.1:", "file://", "data:", "blob:")),
                  lambda route: route.abort())
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------
def test_student_runs_the_release_notebook_in_jupyterlab(jupyter, page, tmp_path):
    from playwright.sync_api import expect

    base, token = jupyter
    page.goto(f"{base}/lab/tree/release/a2/Toy.ipynb?token={token}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook).to_be_visible()
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(7)
    # What the student sees is the release: stubs, no solution and no hidden test.
    text = notebook.inner_text()
    assert "raise NotImplementedError()" in text
    assert SOLUTION_LINE not in text and HIDDEN_LINE not in text and "BEGIN HIDDEN" not in text
    # Wait for the kernel, then run the setup cell, the stub and its check with Shift+Enter.
    # (not the toolbar's indicator: it reads 'idle' before there is a kernel at all)
    kernel_status = page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) |")
    expect(kernel_status).to_have_text(re.compile(r"\|\s*Idle\s*$"))
    cells.nth(1).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves on
    # One cell at a time: an error cancels the cells queued behind it, as it would for a person.
    for index in (1, 2, 3, 4):
        prompt = cells.nth(index).locator(".jp-InputPrompt")
        # Under load a key press can land before the notebook listens: press again only while the
        # cell shows no sign of running (an empty prompt), a bounded number of times.
        for _ in range(4):
            page.keyboard.press("Shift+Enter")
            try:
                expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=15_000)
                break
            except AssertionError:
                cells.nth(index).locator(".jp-InputArea-editor").click()
                page.keyboard.press("Escape")
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=120_000)
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_contain_text(SETUP_PRINT)
    expect(cells.nth(2).locator(".jp-OutputArea-output")).to_have_count(0)  # a def prints nothing
    # The first check stops at the stub; the relu check too, so the kernel imported the
    # release's stubbed package, not the instructor's.
    errors = [cells.nth(index).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
              for index in (3, 4)]
    for error in errors:
        expect(error).to_contain_text("NotImplementedError")
    expect(errors[1]).to_contain_text("release/a2/cs231n/layers.py")
    page.screenshot(path=tmp_path / "notebook.png", full_page=True)
    assert (tmp_path / "notebook.png").stat().st_size > 10_000
    assert not page.js_errors, page.js_errors


def test_instructor_sees_the_assignment_in_formgrader(jupyter, page):
    from playwright.sync_api import expect

    base, token = jupyter
    page.goto(f"{base}/formgrader/manage_assignments?token={token}")
    # The table is filled in by the page's script from the gradebook that build_release wrote.
    name = page.locator("td.name").get_by_role("link", name="a2", exact=True)
    expect(name).to_be_visible()
    row = page.locator("tr", has=name)
    expect(row).to_have_count(1)
    expect(row.locator("td.status")).to_have_text("draft")
    expect(page.get_by_text("nbgrader will not work correctly")).to_have_count(0)
    expect(page.get_by_text("could not be created")).to_have_count(0)  # our exchange, in tmp
    assert not page.js_errors, page.js_errors


def test_feedback_page_shows_scores_and_names_but_no_test_source(browser, tmp_path):
    from autograder.results.feedback import render
    from autograder.results.store import GradeResult
    from playwright.sync_api import expect

    markup = "<script>document.title = 'ran'</script><b id='injected'>bold</b>"
    result = {
        "student_id": "alice", "digest": "0" * 64, "nbgrader_ok": True, "missing_files": [],
        "notebooks": [{"notebook": "Toy", "grades": [
            {"name": "test_double", "auto_score": 0.0, "max_score": 2.0, "needs_manual_grade": False,
             "message": "NotImplementedError: " + markup},
            {"name": "test_relu", "auto_score": 3.0, "max_score": 3.0, "needs_manual_grade": False,
             "message": ""},
            {"name": "why_relu", "auto_score": None, "max_score": 1.0, "needs_manual_grade": True,
             "message": ""}]}],
        "functions": [
            {"task": "relu_forward", "case": "mixed_signs", "points": 1.5, "max_points": 1.5, "passed": True,
             "message": ""},
            {"task": "conv_forward_naive", "case": "stride2_pad1", "points": 0.0, "max_points": 2.0,
             "passed": False, "message": "out differs from the reference: relative error 0.31"}],
    }
    result = GradeResult.from_json(json.dumps(result))
    path = tmp_path / "feedback.html"
    path.write_text(render(result, "a2"), encoding="utf-8")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context()
    try:
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        page.goto(path.as_uri())
        expect(page.locator("#total")).to_contain_text("Score: 3 of 6")  # notebook points only: one scale
        for name in ("test_double", "test_relu", "why_relu", "conv_forward_naive", "stride2_pad1"):
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        expect(page.get_by_text("relative error 0.31")).to_be_visible()
        # A message is text: its markup shows literally and runs nothing.
        expect(page.get_by_text(markup)).to_be_visible()
        assert page.locator("#injected").count() == 0 and page.title() != "ran"
        body = page.locator("body").inner_text()
        assert HIDDEN_LINE not in body and "check_close(" not in body and "BEGIN HIDDEN" not in body
    finally:
        context.close()
