"""The course on a real JupyterHub with nbgrader's exchange, end to end.

A JupyterHub from this repository's platforms/jupyterhub/jupyterhub_config.py (PAM log-in, one
Jupyter server per Linux user, configurable-http-proxy from npm) serves two Linux users made for
the test, an instructor and a student, on 127.0.0.1. The round trip:

1. the instructor releases: `python -m autograder release --exchange` (nbgrader release_assignment);
2. the student logs in with Chromium, opens nbgrader's Assignment List in JupyterLab and fetches;
3. the student sees no instructor tool, completes the assignment (the reference solution copied
   in), builds the fast layers in place (`make hub-build`, no venv), validates (nbgrader's Validate
   button) and submits there, under nbgrader's size limit;
4. the instructor collects and grades (`python -m autograder grade --exchange`) and releases
   feedback (`python -m autograder feedback --exchange`, nbgrader release_feedback);
5. the student fetches the feedback (`nbgrader fetch_feedback`) and sees the score, in the
   browser, without any hidden test.

Servers are started through the hub's REST API; the instructor's and the student's commands run
as those users (runuser). Everything is stopped and the users removed afterwards. The toy
assignment (tests/course_fixtures.py) keeps the grading short. Needs root (users, the hub's
local spawner), Debian's Chromium (.ci/install-browser) and the proxy (.ci/install-proxy); it
skips, saying which, without them.
"""
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from course_fixtures import HIDDEN_LINE, make_toy_source
from quick_cc import quick_cc_env
from services import free_port, stop_group, wait_until

from autograder.config import PACKAGE, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("jupyterhub")]

BIN = Path(sys.executable).parent
HUB_CONFIG = ROOT / "platforms" / "jupyterhub" / "jupyterhub_config.py"
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
BROWSER = os.environ.get("CS231N_BROWSER", "/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic", "--no-proxy-server"]
UI_TIMEOUT_MS = 60_000
HUB_POLL = {"every": 0.5, "ignoring": (Exception,)}  # the hub and the servers answer errors until they are up


def _require():
    if os.geteuid() != 0:
        pytest.skip("needs root: the test creates Linux users and JupyterHub's local spawner runs as root")
    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if not shutil.which(tool):
            pytest.skip(f"no {tool} on this machine")
    if not PROXY.exists():
        pytest.skip(f"no {PROXY}: run `make proxy` (configurable-http-proxy from npm)")
    if not (BIN / "jupyterhub").exists():
        pytest.skip("jupyterhub is not installed: pip install -r requirements-dev.txt")
    if not os.access(BROWSER, os.X_OK):
        pytest.skip(f"no Chromium at {BROWSER}: run `.ci/install-browser` as root")


@contextlib.contextmanager
def enterable_checkout():
    """The hub's users run this checkout's autograder and read its hub configuration, so they
    must be able to pass through every folder above it and read the checkout itself (Python lists
    a folder on its path). A clone in a private folder (`mktemp -d` makes it 0700) gets `o+x`
    (enter, not list) on the folders above it and `o+rx` on itself for the test, and their modes
    back afterwards."""
    needed = {ROOT: 0o005, **{p: 0o001 for p in ROOT.parents}}
    private = {p: os.stat(p).st_mode & 0o7777 for p, bits in needed.items() if os.stat(p).st_mode & bits != bits}
    try:
        for folder, mode in private.items():
            os.chmod(folder, mode | needed[folder])
        yield
    finally:
        for folder, mode in private.items():
            os.chmod(folder, mode)


def users_python(tmp):
    """The bin/ folder of a Python every user can run, with this project's packages.

    This venv's interpreter may be private to root (pyenv under /root, as on this machine); a
    hub's users need one they can execute, as a real deployment has (/opt/conda, /usr/bin). Then
    a venv of the system's Python of the same version is made that loads this venv's packages
    (same ABI), shares its share/ and etc/ (JupyterLab's assets, nbgrader's extensions), and has
    this venv's console scripts with its own interpreter."""
    if all(os.stat(p).st_mode & 0o001 for p in [Path(sys.executable).resolve(), *Path(sys.executable).resolve().parents]):
        return BIN
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = Path(f"/usr/bin/python{version}")
    if not system.exists():
        pytest.skip(f"this Python is private to root and there is no {system} for the hub's users")
    venv = tmp / "users-python"
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(venv)], check=True)
    prefix = BIN.parent
    for folder in ("share", "etc"):
        (venv / folder).symlink_to(prefix / folder)
    site = venv / "lib" / f"python{version}" / "site-packages"
    (site / "cs231n_course.pth").write_text(f"import site; site.addsitedir({str(prefix / site.relative_to(venv))!r})\n")
    for script in BIN.iterdir():
        text = script.read_bytes() if script.is_file() and not script.is_symlink() else b""
        if text.startswith(f"#!{BIN}/python".encode()) and not (venv / "bin" / script.name).exists():
            (venv / "bin" / script.name).write_bytes(b"#!" + str(venv / "bin" / "python").encode()
                                                     + text[text.index(b"\n"):])
            (venv / "bin" / script.name).chmod(0o755)
    for path in [venv, *venv.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    return venv / "bin"


def _call(url, token=None, method="GET", data=None):
    request = urllib.request.Request(url, method=method, data=None if data is None else json.dumps(data).encode())
    if token:
        request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def linux_users(*prefixes):
    """Yield {prefix: (name, password)} of new Linux users with homes; removed afterwards."""
    made = {}
    try:
        for prefix in prefixes:
            name, password = f"{prefix}{secrets.token_hex(3)}", secrets.token_urlsafe(12)
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
            made[prefix] = (name, password)
            os.chmod(f"/home/{name}", 0o700)  # docs/jupyterhub.md: HOME_MODE 0700
            subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        yield made
    finally:
        for name, _ in made.values():
            subprocess.run(["userdel", "--remove", "--force", name], capture_output=True)


def as_user(name, argv, env=None, check=True, timeout=600, bin_dir=BIN):
    """Run argv as the Linux user `name` in their home, with the hub's course environment."""
    home = f"/home/{name}"
    full_env = {"HOME": home, "USER": name, "LOGNAME": name, "PATH": f"{bin_dir}:/usr/bin:/bin",
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(["runuser", "-u", name, "--", "env", "-i", *[f"{k}={v}" for k, v in full_env.items()],
                           *argv], cwd=home, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{argv} as {name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def as_root_in_home(name, argv, env=None, timeout=600, bin_dir=BIN):
    """Run argv as root (as `sudo` would) in user `name`'s home, with the hub's course environment."""
    home = f"/home/{name}"
    full_env = {"HOME": home, "PATH": f"{bin_dir}:/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(argv, cwd=home, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} as root:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@contextlib.contextmanager
def jupyterhub(state, instructor, student, exchange, bin_dir):
    """Yield (hub URL, admin API token) of a JupyterHub run from platforms/jupyterhub."""
    token = secrets.token_hex(16)
    port = free_port()
    config = state / "test_config.py"
    config.write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(HUB_CONFIG)!r})  # noqa: F821\n"
        "c.JupyterHub.services = [{'name': 'cs231n-test', 'api_token': " + repr(token) + "}]\n"
        "c.JupyterHub.load_roles = [{'name': 'cs231n-test', 'services': ['cs231n-test'],\n"
        "    'scopes': ['admin:users', 'admin:servers', 'read:users']}]\n")
    config.chmod(0o600)
    env = {**os.environ, "CS231N_INSTRUCTORS": instructor, "CS231N_STUDENTS": student,
           "CS231N_HUB_IP": "127.0.0.1", "CS231N_HUB_PORT": str(port), "CS231N_HUB_API_PORT": str(free_port()),
           "CS231N_PROXY_API_PORT": str(free_port()), "CS231N_HUB_STATE": str(state),
           "CS231N_EXCHANGE": str(exchange), "CS231N_SINGLEUSER": str(bin_dir / "jupyterhub-singleuser"),
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    log = open(state / "jupyterhub.log", "w")
    hub = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(config)], cwd=state, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _call(f"{url}/hub/api/")["version"], 90, "JupyterHub did not answer", **HUB_POLL)
        yield url, token
    finally:
        for name in (student, instructor):
            with contextlib.suppress(Exception):
                _call(f"{url}/hub/api/users/{name}/server", token, method="DELETE")
        stop_group(hub, grace=60, after_kill=30)
        log.close()
        print("JupyterHub's log, last lines:\n" + "\n".join((state / "jupyterhub.log").read_text().splitlines()[-60:]))


def start_server(url, token, name):
    _call(f"{url}/hub/api/users/{name}/server", token, method="POST", data={})
    wait_until(lambda: _call(f"{url}/hub/api/users/{name}", token)["servers"][""]["ready"], 180,
               f"{name}'s Jupyter server did not start", **HUB_POLL)


def test_a_course_round_trip_through_jupyterhub_and_the_exchange():
    _require()
    from playwright.sync_api import expect, sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="cs231n-hub-"))  # outside pytest's root-only folders
    tmp.chmod(0o755)
    exchange = tmp / "exchange"
    exchange.mkdir()
    exchange.chmod(0o1777)
    (tmp / "hub").mkdir(mode=0o700)
    try:
        bin_dir = users_python(tmp)
        python = str(bin_dir / "python")
        with enterable_checkout(), linux_users("cs231ni", "cs231ns") as users, \
                jupyterhub(tmp / "hub", users["cs231ni"][0], users["cs231ns"][0], exchange, bin_dir) as (url, token):
            (instructor, _), (student, password) = users["cs231ni"], users["cs231ns"]
            course_env = {"JUPYTER_CONFIG_PATH": str(HUB_CONFIG.parent), "CS231N_EXCHANGE": str(exchange),
                          "PYTHONPATH": str(ROOT)}
            # the instructor's course: the toy assignment's source, in their home
            make_source = ("import sys; sys.path.insert(0, sys.argv[1]); from course_fixtures import make_toy_source; "
                           "from pathlib import Path; make_toy_source(Path.home() / 'src')")
            as_user(instructor, [python, "-c", make_source, str(ROOT / "tests")], course_env, bin_dir=bin_dir)
            autograder = [python, "-m", "autograder", "--course", f"/home/{instructor}/course",
                          "--source", f"/home/{instructor}/src"]
            released = as_user(instructor, [*autograder, "release", "--exchange"], course_env, bin_dir=bin_dir)
            assert "released to the exchange" in released.stdout
            start_server(url, token, instructor)
            start_server(url, token, student)

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=BROWSER, args=BROWSER_ARGS)
                try:
                    page = browser.new_page()
                    page.set_default_timeout(UI_TIMEOUT_MS)
                    page.goto(f"{url}/hub/login")
                    page.fill("input#username_input", student)
                    page.fill("input#password_input", password)
                    page.click("#login_submit")
                    page.goto(f"{url}/user/{student}/lab")
                    page.get_by_role("menuitem", name="Nbgrader").click()
                    # a student's lab: the Assignment List, none of the instructor's tools
                    for tool in ("Formgrader", "Course List", "Create assignment"):
                        expect(page.locator(".lm-Menu-item:visible", has_text=tool)).to_have_count(0)
                    page.get_by_role("menuitem", name="Assignment List").click()
                    released_list = page.locator("#released_assignments_list")
                    released_list.get_by_role("button", name="Fetch").click()
                    fetched_list = page.locator("#fetched_assignments_list")
                    expect(fetched_list.get_by_role("button", name="Submit")).to_be_visible()
                    home = Path(f"/home/{student}/a2")
                    assert (home / "Toy.ipynb").is_file() and (home / "cs231n" / "layers.py").is_file()
                    # the student's work: the reference solution, copied in as the student
                    src = Path(tempfile.mkdtemp(prefix="reference-", dir=tmp))
                    make_toy_source(src)
                    shutil.copytree(PACKAGE, src / "a2" / "cs231n", dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc"))
                    src.chmod(0o755)
                    for folder in src.rglob("*"):
                        folder.chmod(0o755 if folder.is_dir() else 0o644)
                    as_user(student, ["cp", "-r", f"{src}/a2/.", str(home)], bin_dir=bin_dir)
                    # docs/jupyterhub.md step 4: the fast layers, built in place for the hub's kernel
                    as_user(student, ["make", "-C", str(home), "hub-build"], quick_cc_env(src / "cc"), bin_dir=bin_dir,
                            timeout=900)
                    assert list((home / "cs231n").glob("fast_layers*.so")) and not (home / ".venv").exists()
                    # nbgrader's Validate, in the notebook's toolbar
                    page.goto(f"{url}/user/{student}/lab/tree/a2/Toy.ipynb")
                    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
                    notebook.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
                    expect(page.locator(".jp-Dialog")).to_contain_text("Success", timeout=600_000)
                    page.locator(".jp-Dialog").get_by_role("button").last.click()
                    page.goto(f"{url}/user/{student}/lab")
                    page.get_by_role("menuitem", name="Nbgrader").click()
                    page.get_by_role("menuitem", name="Assignment List").click()
                    fetched_list.get_by_role("button", name="Submit").click()
                    expect(page.locator("#submitted_assignments_list").get_by_text("a2")).to_be_visible()
                    inbound = list((exchange / "cs231n" / "inbound").glob(f"{student}+a2+*"))
                    assert len(inbound) == 1
                    handed_in = [p for p in inbound[0].rglob("*") if p.is_file()]
                    size = sum(p.stat().st_size for p in handed_in)
                    print(f"the submission: {len(handed_in)} files, {size / 1e6:.2f} MB; nbgrader's limit 100 MB")
                    assert size < 100_000 * 1000 and not [p for p in handed_in if p.suffix in (".so", ".c")]

                    # the instructor collects, grades and sends the feedback back
                    # grading runs student code, so it runs as root (`sudo` in docs/jupyterhub.md): the
                    # sandbox gives each student run its own unprivileged user; the course stays the
                    # instructor's
                    # (with the grading machine's own venv: the project's, which root can read)
                    graded = as_root_in_home(instructor, [sys.executable, *autograder[1:], "grade", "--exchange",
                                                          "--workers", "1"], course_env, timeout=900, bin_dir=bin_dir)
                    subprocess.run(["chown", "-R", f"{instructor}:", f"/home/{instructor}/course"], check=True)
                    assert "collected 1 submissions" in graded.stdout, graded.stdout
                    grades = (Path(f"/home/{instructor}/course/export/grades.csv")).read_text().splitlines()
                    row = dict(zip(grades[0].split(","), grades[1].split(",")))
                    assert row["student_id"] == student and float(row["score"]) > 0
                    sent = as_user(instructor, [*autograder, "feedback", "--exchange"], course_env, bin_dir=bin_dir)
                    assert f"feedback released to the exchange for 1 students: {student}" in sent.stdout

                    # the student fetches it and reads the score
                    as_user(student, [python, "-m", "nbgrader", "fetch_feedback", "a2"], course_env, bin_dir=bin_dir)
                    pages = list(home.glob("feedback/*/Toy.html"))
                    assert len(pages) == 1
                    relative = pages[0].relative_to(Path(f"/home/{student}")).as_posix()
                    page.goto(f"{url}/user/{student}/files/{relative}")
                    score = f"Score: {float(row['score']):g} of {float(row['max_score']):g}"
                    expect(page.locator("#total")).to_contain_text(score)
                    assert HIDDEN_LINE not in page.content() and "HIDDEN TESTS" not in page.content()
                    # and reads nothing of the instructor's course: the gradebook, classmates' work
                    peek = as_user(student, ["ls", f"/home/{instructor}/course/submitted"], check=False)
                    assert peek.returncode != 0, f"the student can list the class's submissions: {peek.stdout}"
                finally:
                    browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
