"""A student works from the release alone: `make install` builds it in a fresh venv, the local
checks run and tell a stub from a finished function, its JupyterLab (in Chromium) is a student's:
Validate, and none of nbgrader's instructor tools, and `make submit` packs exactly the files to
hand in after a report of what is unfinished (notebooks stopped or not run, unanswered
questions, failing checks), refusing only what cannot be handed in."""
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest
from quick_cc import quick_cc_env
from services import free_port, stop_group, wait_until

from autograder.config import PACKAGE, Course
from autograder.release.build import build_release
from cs231n.submit import (UNANSWERED, SubmissionError, failing_tasks, files_to_submit, notebook_report, pack,
                           report_lines)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("student_release")]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("student")
    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}")
    return build_release(course, out=tmp / "a2")


def make(release, *args, timeout=900):
    """`make -C release *args`; its pip does not byte-compile every installed file (PIP_COMPILE=0:
    a third of `make install`), Python compiles what is imported; the fast layers build at -O0."""
    return subprocess.run(["make", "-C", str(release), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PIP_COMPILE": "0", **quick_cc_env(release.parent / "cc")})


def _run_all(folder):
    """Mark every notebook as run, as saving after Restart Kernel and Run All Cells would."""
    for path in Path(folder).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1
        nbformat.write(nb, path)


def test_make_install_builds_the_release_and_the_checks_run(release):
    proc = make(release, "install")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list((release / "cs231n").glob("fast_layers*.so")), "the Cython extension was not built"
    stub = make(release, "check", "TASK=relu_forward")
    assert stub.returncode != 0 and "relu_forward in cs231n/layers.py is not written yet" in stub.stdout, stub.stdout[-3000:]
    shutil.copyfile(PACKAGE / "layers.py", release / "cs231n" / "layers.py")  # the student finishes the layers
    done = make(release, "check", "TASK=relu_forward")
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "deselected" in done.stdout  # only that task's checks ran


def _stop_at_an_error(path, code_cell, ename, evalue):
    """Save the notebook as a run that stopped at its code cell number `code_cell` (1-based)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code[:code_cell]):
        cell.execution_count = i + 1
    code[code_cell - 1].outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
    nbformat.write(nb, path)
    return nb.cells.index(code[code_cell - 1]) + 1


def _answer_all_but(path, left):
    """Write an answer in every written-answer cell except the first `left`."""
    nb = nbformat.read(path, as_version=4)
    answers = [c for c in nb.cells if c.cell_type == "markdown" and UNANSWERED in c.source]
    for cell in answers[left:]:
        cell.source = cell.source.replace(UNANSWERED, "Because the variance halves.")
    nbformat.write(nb, path)
    return [c.metadata["nbgrader"]["grade_id"] for c in answers[:left]]


def test_submit_reports_each_notebook_then_packs_exactly_the_graded_files(release, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns(".venv", "*.so", "build", "*.egg-info"))
    _run_all(work)
    cell = _stop_at_an_error(work / "Dropout.ipynb", 5, "AttributeError", "'Solver' object has no attribute 'trian'")
    left = _answer_all_but(work / "Dropout.ipynb", 2)
    for path in work.glob("*.ipynb"):
        if path.name != "Dropout.ipynb":
            _answer_all_but(path, 0)
    (work / "PyTorch.ipynb").write_text(json.dumps(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import torch")], metadata={"cs231n": {"points": 0}})))
    reports = {r.name: r for r in map(notebook_report, sorted(work.glob("*.ipynb")))}
    dropout = reports["Dropout"]
    assert dropout.state == f"stopped at cell {cell} (In [5]): AttributeError: 'Solver' object has no attribute 'trian'"
    assert dropout.unanswered == left and len(left) == 2
    assert reports["FullyConnectedNets"].ready and reports["FullyConnectedNets"].state == "ran"
    assert reports["PyTorch"].state == "not run" and reports["PyTorch"].optional
    assert reports["Optimizers"].optional and not reports["ConvolutionalNetworks"].optional
    lines = "\n".join(report_lines(list(reports.values()), ["affine_backward"]))
    assert f"2 written answer(s) still \"{UNANSWERED}\": {left[0]}, {left[1]}" in lines
    assert "Kernel > Restart Kernel and Run All Cells..." in lines and "TASK=name" in lines
    # packed anyway; refused only for what cannot be handed in
    (work / "notes.txt").write_text("not graded")
    names = pack(work, work / "a2_submission.zip")
    with zipfile.ZipFile(work / "a2_submission.zip") as zf:
        assert sorted(zf.namelist()) == sorted(names)
    notebooks = sorted(p.name for p in release.glob("*.ipynb"))
    assert sorted(n for n in names if n.endswith(".ipynb")) == notebooks and len(notebooks) >= 4
    assert all(n.endswith(".ipynb") or (n.startswith("cs231n/") and n.endswith(".py")) for n in names)
    assert "cs231n/layers.py" in names and "notes.txt" not in names
    (work / "cs231n" / "optim.py").unlink()
    with pytest.raises(SubmissionError, match="missing cs231n/optim.py"):
        files_to_submit(work)
    shutil.copyfile(release / "cs231n" / "optim.py", work / "cs231n" / "optim.py")
    (work / "Dropout.ipynb").write_text('{"cells": [')  # a save cut short
    with pytest.raises(SubmissionError, match="Dropout.ipynb cannot be read as a notebook"):
        files_to_submit(work)


def test_submit_lists_the_tasks_whose_checks_fail(release, tmp_path):
    """The local checks run, and the report names the tasks that fail: here the update rules are
    finished but adam, and only the optimiser's checks are present."""
    work = tmp_path / "work"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns(".venv", "*.so", "build", "*.egg-info", "tests"))
    (work / "tests").mkdir()
    for name in ("conftest.py", "helpers.py", "test_optim.py"):
        shutil.copyfile(release / "tests" / name, work / "tests" / name)
    optim = (PACKAGE / "optim.py").read_text()
    (work / "cs231n" / "optim.py").write_text(optim + "\n\ndef adam(w, dw, config=None):\n    return w, config\n")
    assert failing_tasks(work) == ["adam"]


def test_submit_command_reports_and_writes_the_zip(release, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns(".venv", "*.so", "build", "*.egg-info"))
    # run from the student's folder, so `python -m` imports the release's package found there
    proc = subprocess.run([sys.executable, "-m", "cs231n.submit", "--no-checks"], cwd=work, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Dropout" in proc.stdout and "not run" in proc.stdout and "(extra credit: optional)" in proc.stdout
    assert UNANSWERED in proc.stdout and "wrote a2_submission.zip" in proc.stdout
    assert (work / "a2_submission.zip").is_file() and not list(work.glob(".submission-*"))
    (work / "cs231n" / "layers.py").unlink()
    proc = subprocess.run([sys.executable, "-m", "cs231n.submit", "--no-checks", "--out", "again.zip"], cwd=work,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "missing cs231n/layers.py" in proc.stderr and not (work / "again.zip").exists()


@pytest.fixture(scope="module")
def installed(release):
    """The release after its own `make install` (a no-op when a test above already ran it)."""
    proc = make(release, "install")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return release


@contextlib.contextmanager
def release_lab(folder, home):
    """(base URL, token) of the JupyterLab the release's `make lab` starts: its own venv's
    `jupyter lab`, with nothing of this machine's Jupyter settings (config and data in `home`)."""
    token, port = secrets.token_hex(16), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JUPYTER") and k != "PYTHONPATH"},
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython")}
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    argv = [str(folder / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}", f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else [])]
    with open(home / "jupyter.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _status(f"{base}/api/status?token={token}") == 200, 90,
                   "the release's JupyterLab did not answer", every=0.3, ignoring=(OSError,))
        yield base, token
    finally:
        stop_group(proc)
        print("JupyterLab's log:\n" + (home / "jupyter.log").read_text(errors="replace")[-3000:])


def _status(url):
    """The HTTP status of GET url (an error status too), without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_students_lab_has_validate_and_none_of_the_instructors_tools(installed, tmp_path):
    """In the JupyterLab of the installed release, the menus and sidebars a student sees hold
    nbgrader's Validate and no Formgrader, Create Assignment, Course List or Assignment List (no
    exchange here); the server extensions behind them are off too."""
    from test_browser import BROWSER, BROWSER_ARGS, UI_TIMEOUT_MS, _require_browser

    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with release_lab(installed, tmp_path) as (base, token), sync_playwright() as pw:
        for path in ("formgrader", "formgraders", "assignments"):  # formgrader, course list, assignment list
            assert _status(f"{base}/{path}?token={token}") == 404, f"/{path} is served to the student"
        browser = pw.chromium.launch(executable_path=BROWSER, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            page.goto(f"{base}/lab/tree/Dropout.ipynb?token={token}")
            toolbar = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar")
            expect(toolbar.get_by_text("Validate", exact=True)).to_be_visible()
            menus = page.locator("#jp-MainMenu .lm-MenuBar-itemLabel")
            expect(menus.filter(has_text="Kernel")).to_be_visible()
            assert "Nbgrader" not in menus.all_inner_texts(), menus.all_inner_texts()
            tabs = page.locator(".jp-SideBar .lm-TabBar-tab").evaluate_all(
                "tabs => tabs.map(t => (t.getAttribute('title') || '') + ' ' + t.innerText)")
            assert any("File Browser" in tab for tab in tabs), tabs
            assert not [tab for tab in tabs if "Create Assignment" in tab or "nbgrader" in tab.lower()], tabs
            # nor behind the command palette, which finds the menus' commands (once the lab is up:
            # the notebook's kernel is idle)
            kernel = page.locator(".jp-StatusBar-TextItem", has_text="Python 3 (ipykernel) |")
            expect(kernel).to_have_text(re.compile(r"\|\s*Idle\s*$"), timeout=180_000)
            menus.filter(has_text="View").click()
            page.locator(".lm-Menu-item:visible", has_text="Command Palette").click()
            search = page.locator(".lm-CommandPalette-input:visible")
            items = page.locator(".lm-CommandPalette-item:visible")
            search.fill("Restart Kernel and Run All")
            expect(items.filter(has_text="Restart Kernel and Run All Cells")).to_have_count(1)  # the README's
            for name in ("Formgrader", "Course List", "Assignment List", "Create assignment"):
                search.fill(name)
                expect(items.filter(has_text=name)).to_have_count(0)
            page.keyboard.press("Escape")
            # Validate works: it runs the notebook and reports the stubs' failures
            toolbar.get_by_text("Validate", exact=True).click()
            expect(page.locator(".jp-Dialog")).to_contain_text("The following cell failed", timeout=600_000)
        finally:
            browser.close()
