"""The self-learner's path (issue 24): `make self-study` makes a workspace of the real release
with its own set-up and keeps it when run again; its stubs fail their checks; `compare` shows a
task's reference only once its checks pass; `grade-mine`, run as an unprivileged user, grades
the workspace's reference-filled copy through the whole pipeline to full marks and a feedback page.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from pathlib import Path

import pytest
from quick_cc import quick_cc_env
from as_user import NOBODY
from services import free_port, stop_group, wait_until
from test_jupyterhub import users_python

from autograder.config import PACKAGE, ROOT
from autograder.selfstudy.workspace import MARKER
from cs231n.tasks import TASKS_BY_FILE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("self_study")]
# PIP_COMPILE=0: the workspace's pip does not byte-compile every installed file (a third of its
# `make install`); Python compiles what is imported, when it is
ENV = {**os.environ, "CS231N_DATASET": "digits", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PIP_COMPILE": "0"}
LEARNERS_RELU = "    out = np.where(x > 0, x, 0.0)  # my own way\n"
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"


def _cli(*args, env=None, cwd=ROOT, timeout=1200):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def _make(workspace, *args, timeout=900):
    return subprocess.run(["make", "-C", str(workspace), *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


PROJECT_CONFIG = {}


def _jupyter_config():
    """{path: bytes} of this venv's Jupyter configuration (etc/jupyter)."""
    etc = Path(sys.prefix) / "etc" / "jupyter"
    return {p.relative_to(etc).as_posix(): p.read_bytes() for p in sorted(etc.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace():
    """A workspace made by the self-study command, in a folder other users may enter (/tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="cs231n-self-study-", dir="/tmp"))
    folder.chmod(0o755)
    PROJECT_CONFIG.update(before=_jupyter_config())
    made = _cli("self-study", str(folder / "ws"), "--no-lab", env={**ENV, **quick_cc_env(folder / "cc")})
    assert made.returncode == 0, made.stdout + made.stderr
    yield folder / "ws"
    shutil.rmtree(folder, ignore_errors=True)


def test_a_fresh_workspace_is_the_release_with_its_own_cs231n_and_its_stubs_fail(workspace):
    assert sorted(p.name for p in workspace.glob("*.ipynb")) == sorted(p.name for p in (ROOT / "assignments" / "a2").glob("*.ipynb"))
    assert "raise NotImplementedError()" in (workspace / "cs231n" / "layers.py").read_text()
    assert json.loads((workspace / MARKER).read_text())["project"] == str(ROOT)
    # its Python imports the workspace's package, never this checkout's reference, from any folder
    where = subprocess.run([str(workspace / ".venv" / "bin" / "python"), "-c",
                            "import cs231n, cs231n.fast_layers as f, nbgrader; print(cs231n.__file__); print(f.__file__)"],
                           cwd="/", capture_output=True, text=True, env=ENV)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(f"{workspace}/cs231n/") for line in where.stdout.split()), where.stdout
    # what its set-up (the release's `make install`) writes into Jupyter's configuration stays in its own venv
    assert _jupyter_config() == PROJECT_CONFIG["before"]
    for task in ("conv_forward_naive", "relu_forward"):
        check = _make(workspace, "check", f"TASK={task}")
        summary = re.search(r"^(\d+) failed, (\d+) deselected in", check.stdout, re.MULTILINE)  # none passed
        assert check.returncode != 0 and summary and int(summary[1]) >= 1, check.stdout[-2000:]


def test_running_the_start_command_again_keeps_the_learners_work(workspace, tmp_path):
    layers = workspace / "cs231n" / "layers.py"
    notebook = workspace / "ConvolutionalNetworks.ipynb"
    edited = layers.read_text() + "\n# my notes on the im2col trick\n"
    layers.write_text(edited)
    notebook_before = notebook.read_bytes()
    again = _cli("self-study", str(workspace), "--no-lab")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"your workspace is {workspace}" in again.stdout
    assert f"To start afresh, move it away (keeping it) and run again: mv {workspace} {workspace}-old && " \
           f"make self-study WORKSPACE={workspace}" in again.stdout
    assert layers.read_text() == edited and notebook.read_bytes() == notebook_before
    # a folder holding something else is not made into a workspace
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter1.tex").write_text("keep me")
    refused = _cli("self-study", str(tmp_path / "thesis"), "--no-lab")
    assert refused.returncode == 2 and "is not a self-study workspace" in refused.stderr
    assert sorted(p.name for p in (tmp_path / "thesis").iterdir()) == ["chapter1.tex"]


def test_without_no_lab_the_start_command_opens_jupyterlab_in_the_workspace(workspace):
    """The server the command becomes serves the workspace's notebooks, with the digits chosen
    (no CIFAR-10 there), and its kernels run the workspace's Python."""
    port, token = free_port(), secrets.token_hex(8)
    env = {k: v for k, v in ENV.items() if k != "CS231N_DATASET"}
    env.update(JUPYTER_PORT=str(port), JUPYTER_TOKEN=token, BROWSER="true")
    lab = subprocess.Popen([sys.executable, "-m", "autograder", "self-study", str(workspace)], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api"
        wait_until(lambda: _get(f"{url}/contents?token={token}"), 120, "JupyterLab did not answer", every=0.5,
                   ignoring=(OSError,))
        listing = _get(f"{url}/contents?token={token}")
        assert {item["name"] for item in listing["content"]} >= {"ConvolutionalNetworks.ipynb", "cs231n", "GNUmakefile"}
        spec = _get(f"{url}/kernelspecs?token={token}")["kernelspecs"]["python3"]["spec"]
        assert spec["argv"][0] == "python"  # jupyter_client runs the server's own Python: the workspace's
        command = Path(f"/proc/{lab.pid}/cmdline").read_bytes().split(b"\0")
        assert command[0].decode() == str(workspace / ".venv" / "bin" / "python"), command
        assert "CS231N_DATASET=digits" in Path(f"/proc/{lab.pid}/environ").read_bytes().decode(errors="replace")
    finally:
        stop_group(lab)
    assert "no CIFAR-10 in the workspace: the notebooks use the offline digits" in lab.stdout.read()


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _reference_line(task, file):
    lines = (PACKAGE / file).read_text().split(f"def {task}(", 1)[1].splitlines()
    return next(line for line in lines[lines.index("    ### BEGIN SOLUTION") + 1:] if line.strip())


def test_compare_refuses_a_failing_task_and_shows_a_passing_one(workspace):
    refused = _make(workspace, "compare", "TASK=relu_forward")
    assert refused.returncode != 0
    assert "the checks of relu_forward do not pass yet, so its reference stays hidden" in refused.stdout
    assert "make check TASK=relu_forward" in refused.stdout
    assert _reference_line("relu_forward", "layers.py").strip() not in refused.stdout
    # the learner writes relu_forward their own way: its checks pass, and the reference shows
    layers = workspace / "cs231n" / "layers.py"
    head, tail = layers.read_text().split("def relu_forward(", 1)
    layers.write_text(head + "def relu_forward(" + tail.replace(STUB, LEARNERS_RELU, 1))
    shown = _make(workspace, "compare", "TASK=relu_forward")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "--- yours: cs231n/layers.py" in shown.stdout and "+++ reference: cs231n/layers.py" in shown.stdout
    assert f"-{LEARNERS_RELU.rstrip()}" in shown.stdout.splitlines()
    assert f"+{_reference_line('relu_forward', 'layers.py')}" in shown.stdout.splitlines()
    assert "SOLUTION" not in shown.stdout
    unknown = _cli("compare", str(workspace), "relu_fwd")
    assert unknown.returncode == 1 and "no task named 'relu_fwd'" in unknown.stdout


def learners_python(folder):
    """A Python the unprivileged user can run, with this venv's packages: test_jupyterhub's
    users_python, whose site-packages is then this venv's own folder (a link): the sandbox binds
    the interpreter's site-packages, and a .pth pointing elsewhere would leave numpy outside."""
    bin_dir = users_python(folder)
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    own_site = bin_dir.parent / site.relative_to(Path(sys.prefix).resolve())
    if bin_dir != Path(sys.executable).parent:
        shutil.rmtree(own_site)
        own_site.symlink_to(site)
    return bin_dir / "python"


def test_grade_mine_as_an_unprivileged_user_gives_the_reference_full_marks_and_a_feedback_page(workspace):
    """The reference filled into a copy of the workspace (the package's task files and the source
    notebooks, as tests/course_fixtures.make_small_class makes a reference submission), graded by
    `grade-mine` as uid 65534 through the real pipeline: the judge and the notebooks in bubblewrap
    as that user (self mode, rlimits), the feedback page written into the workspace. It is also
    the suite's run of every source notebook top to bottom with all its checks passing."""
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv on this machine")
    closed = [str(p) for p in (ROOT, *ROOT.parents) if not p.stat().st_mode & 0o001]
    if closed:  # e.g. a clone made in `mktemp -d` (0700)
        pytest.skip(f"uid {NOBODY} cannot enter {closed[0]}, so it cannot run this checkout's autograder: "
                    "clone into a folder other users may enter (chmod o+x it) to run this test")
    folder = workspace.parent
    mine = folder / "mine"
    shutil.copytree(workspace, mine, ignore=shutil.ignore_patterns(".venv", "build", "*.so", "*.c", "__pycache__"))
    for name in TASKS_BY_FILE:
        shutil.copyfile(PACKAGE / name, mine / "cs231n" / name)
    for notebook in (ROOT / "assignments" / "a2").glob("*.ipynb"):
        shutil.copyfile(notebook, mine / notebook.name)
    python = learners_python(folder)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(mine)], check=True)
    course_before = sorted(p.name for p in (ROOT / "course").iterdir()) if (ROOT / "course").is_dir() else None
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(mine), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    graded = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", str(python),
                             "-m", "autograder", "grade-mine", str(mine)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    output = graded.stdout + graded.stderr
    print(output)
    assert graded.returncode == 0, output
    total = next(line for line in graded.stdout.splitlines() if line.startswith("total: "))
    score, max_score = (float(x) for x in total.split()[1:4:2])
    cases = re.search(r"the judge passed (\d+) of (\d+) function cases", total)
    written = re.search(r"(\d+) written answers \(([\d.]+) points of the maximum\)", output)
    # every automatic point: only the written answers, which a person reads, are not in the total
    assert cases and cases[1] == cases[2] and int(cases[2]) > 50, total
    assert written and score + float(written[2]) >= max_score >= 100, output
    assert "lost points" not in output and "missing" not in output
    assert "as your own user (self mode" in output and "rlimits on each process" in output
    page = mine / "feedback.html"
    assert page.stat().st_uid == NOBODY
    html = page.read_text()
    assert "conv_forward_naive" in html and f"<strong>{score:g}</strong>" in html
    # every source notebook ran top to bottom, no cell raising, timing out or left unrun (the
    # suite's one run of the real notebooks with their solutions: autograder.results.causes words)
    for said in ("the first error was in", "ran out of time", "did not run", "its kernel died", "could not be read"):
        assert said not in html, re.findall(rf"[^<>]*{said}[^<>]*", html)
    # it graded this workspace and nothing else: the checkout's course folder is as it was
    after = sorted(p.name for p in (ROOT / "course").iterdir()) if (ROOT / "course").is_dir() else None
    assert after == course_before
