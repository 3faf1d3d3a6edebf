"""Red team: what hostile student code can do from inside the grading sandbox (docs/isolation.md),
beyond tests/test_hostile_isolation.py and tests/test_hostile_notebooks.py.

Each attack runs student code through the sandbox's own entry point (sandbox.sandboxed_popen with
the Sandbox a kernel run or the judge builds), not through a whole grading run, and asserts the
SAFE outcome. An attack that works is marked xfail(strict=True) with "HOLE:" in its reason.

Views used:
- kernel: Sandbox(cwd=shared, rw=(shared,)) over a shared folder laid out as
  run.enter_run lays it out (runtime/ owned by the run's user, code/ root-owned);
- judge: Sandbox(cwd=w, ro=(w,)) over a folder laid out as judge.grader._prepare lays it out.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from process_tree import pids_where, stat_fields

from autograder.notebooks import kernel_zygote
from autograder.notebooks import launcher as nb_launcher
from autograder.notebooks import run as nb_run
from autograder.sandbox import forked
from autograder.config import ROOT
from autograder.sandbox import bubblewrap as sandbox
from zygote_helpers import real_zygote
from user_slots import slot

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not sandbox.isolation_available(),
                                 reason="per-student users and cgroups need root; the sandbox needs bwrap")]

PYTHON = os.path.realpath(sys.executable)
SLOT_A, SLOT_B = slot(0), slot(1)  # users of two concurrently graded students


def _user(number):
    return sandbox.student_user(number)


def _run(box, code, *args, timeout=120, group=None, env=None):
    """Run `code` with this interpreter inside box; returns (returncode, stdout + stderr)."""
    proc = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(code), *map(str, args)], box,
                                   group=group, env=env or {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        sandbox.kill_tree(proc)
    return proc.returncode, out


@pytest.fixture
def kernel_run(tmp_path):
    """A kernel run's shared folder, as enter_run made it before runtime/ became root's (outside
    its private mount namespace; the worst case for the launcher's checks): shared/ (root, 0711),
    runtime/ (the run's user, 0700), code/ (root, 0755, copies of the zygote's code), and one
    kernel work folder (the run's user, 0700)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o711)
    shared.chmod(0o711)
    tmp_path.chmod(0o755)
    uid, gid = _user(SLOT_A)
    runtime, code, work = shared / "runtime", shared / "code", shared / "work-a"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, uid, gid)
    code.mkdir(mode=0o755)
    for module in (kernel_zygote, forked):
        target = code / Path(module.__file__).name
        shutil.copyfile(module.__file__, target)
        target.chmod(0o644)
    work.mkdir(mode=0o700)
    (work / "mine.py").write_text("x = 1\n")
    nb_launcher._chown_tree(work, uid, gid)
    box = sandbox.Sandbox(cwd=str(work), rw=(str(shared),), uid=uid, gid=gid,
                          limits=sandbox.Limits(**nb_run.KERNEL_LIMITS))
    yield box, shared
    sandbox.end_user_processes(uid)


@pytest.fixture
def judge_box(tmp_path):
    """The judge's view: a prepared folder w (pkg/cs231n, judge/), bound read-only."""
    from autograder.judge import grader

    tmp = Path(tempfile.mkdtemp(prefix="cs231n-judge-", dir=tmp_path))
    student = tmp_path / "student"
    (student / "cs231n").mkdir(parents=True)
    (student / "cs231n" / "__init__.py").write_text("")
    w, found = grader._prepare(tmp, student)
    assert found
    uid, gid = _user(SLOT_A)
    yield sandbox.Sandbox(cwd=str(w), ro=(str(w),), uid=uid, gid=gid, limits=sandbox.Limits()), w
    sandbox.end_user_processes(uid)


# --------------------------------------------------------------------------------------------
# WRITE: the kernels' shared folder, and what the trusted launcher does with it
# --------------------------------------------------------------------------------------------
def test_a_kernel_cannot_change_the_zygotes_code_or_plant_files_next_to_it(kernel_run):
    box, shared = kernel_run
    code = f"""
        import os
        report = []
        def attempt(what, action):
            try:
                action()
                report.append(what)
            except OSError:
                pass
        shared = {str(shared)!r}
        attempt("edit zygote", lambda: open(shared + "/code/kernel_zygote.py", "a").write("#x"))
        attempt("replace zygote", lambda: os.rename(shared + "/code/forked.py", shared + "/code/f"))
        attempt("plant in code", lambda: open(shared + "/code/sitecustomize.py", "w").write("x"))
        attempt("plant in shared", lambda: os.mkdir(shared + "/work-fake"))
        attempt("rename a work folder", lambda: os.rename(shared + "/work-a", shared + "/work-b"))
        print("reached:", report)
    """
    rc, out = _run(box, code)
    assert rc == 0 and "reached: []" in out, out
    assert (shared / "code" / "kernel_zygote.py").read_bytes() == Path(kernel_zygote.__file__).read_bytes()


def _nbgrader_file(shared, name):
    """A connection file as nbgrader writes it: root's, in nbgrader's root-only runtime folder."""
    folder = shared / nb_run.NBGRADER_RUNTIME
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / name).write_text("{}")
    return folder / name


def _launch(shared, connection_file, notebook_dir, run_dir, zygote="no-zygote.sock"):
    """The kernel launcher (launcher.py, run as the grader by jupyter_client) for one
    notebook, the zygote's address zygote/`zygote` (root's folder, as enter_run leaves it; by
    default nothing listens there: it fails after preparing the kernel's files)."""
    uid, gid = _user(SLOT_A)
    limits = sandbox.Limits(**nb_run.KERNEL_LIMITS)
    spec = {"uid": uid, "gid": gid, "limits": limits.__dict__, "env": {}, "shared": str(shared),
            "tmpfs": False, "group": [], "logs": str(run_dir)}
    spec_file = run_dir / "kernel-sandbox.json"
    spec_file.write_text(json.dumps(spec))
    env = {"PATH": os.environ["PATH"], nb_run.SPEC_ENV: str(spec_file),
           kernel_zygote.SOCKET_ENV: str(shared / nb_run.ZYGOTE_FOLDER / zygote)}
    (shared / nb_run.ZYGOTE_FOLDER).mkdir(mode=0o755, exist_ok=True)
    return subprocess.run([PYTHON, str(ROOT / "autograder" / "notebooks" / "launcher.py"), "-f", str(connection_file)],
                          cwd=notebook_dir, env=env, capture_output=True, text=True, timeout=120)


def test_a_kernel_cannot_make_the_launcher_chown_a_host_file(kernel_run, tmp_path):
    box, shared = kernel_run
    bait = tmp_path / "gradebook-secret.db"  # root's, 0600, outside every sandbox
    bait.write_text("grades")
    bait.chmod(0o600)
    connection_file = shared / "runtime" / "kernel-1234.json"  # what nbgrader writes, root's, 0600
    connection_file.write_text(json.dumps({"key": "nbgrader's"}))
    connection_file.chmod(0o600)
    # a process left running by the student's earlier notebook swaps it for a link
    rc, out = _run(box, f"""
        import os
        link = {str(connection_file)!r}
        os.symlink({str(bait)!r}, link + ".new")
        os.rename(link + ".new", link)
        print("swapped")
    """)
    assert rc == 0 and "swapped" in out, out
    notebook_dir, run_dir = tmp_path / "autograded", tmp_path / "run"
    notebook_dir.mkdir()
    run_dir.mkdir()
    (notebook_dir / "Toy.ipynb").write_text("{}")
    _launch(shared, connection_file, notebook_dir, run_dir)
    assert bait.stat().st_uid == 0, f"the launcher gave {bait} to the student's user {bait.stat().st_uid}"


def test_a_kernel_cannot_make_the_launcher_connect_to_a_host_socket(kernel_run, tmp_path):
    import socket as socketlib

    box, shared = kernel_run
    private = tmp_path / "private"  # like /run/postgresql: the grader's, out of every sandbox
    private.mkdir(mode=0o700)
    host = socketlib.socket(socketlib.AF_UNIX)
    host.bind(str(private / "db.sock"))
    host.listen(5)
    host.settimeout(30)
    zygote = shared / "runtime" / kernel_zygote.SOCKET_NAME
    rc, out = _run(box, f"""
        import os
        os.symlink({str(private / "db.sock")!r}, {str(zygote)!r} + ".new")
        os.rename({str(zygote)!r} + ".new", {str(zygote)!r})
        print("swapped")
    """)
    assert rc == 0 and "swapped" in out, out
    notebook_dir, run_dir = tmp_path / "autograded", tmp_path / "run"
    notebook_dir.mkdir()
    run_dir.mkdir()
    connection_file = _nbgrader_file(shared, "kernel-9.json")
    uid, gid = _user(SLOT_A)
    (run_dir / "spec.json").write_text(json.dumps({
        "uid": uid, "gid": gid, "env": {}, "shared": str(shared), "tmpfs": False, "group": [],
        "logs": str(run_dir)}))
    launcher = subprocess.Popen([PYTHON, str(ROOT / "autograder" / "notebooks" / "launcher.py"), "-f", str(connection_file)],
                                cwd=notebook_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={"PATH": os.environ["PATH"], nb_run.SPEC_ENV: str(run_dir / "spec.json"),
                                     kernel_zygote.SOCKET_ENV: str(zygote)})
    try:
        try:
            conn, _ = host.accept()
            got = conn.recv(4096)
            conn.close()
        except OSError:
            got = b""
    finally:
        launcher.kill()
        launcher.wait()
        host.close()
    assert got == b"", f"the launcher, as root, sent a host socket: {got[:200]!r}"


LEAVE_ONE_BEHIND = """import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
"""


def _processes_of(uid):
    return pids_where(lambda entry: entry.stat().st_uid == uid)


def _sessions(pids):
    found = set()
    for pid in pids:
        try:
            found.add(stat_fields(Path(f"/proc/{pid}"))[3])
        except (OSError, IndexError):
            pass
    return found



def test_nothing_a_kernel_started_outlives_its_notebook(tmp_path):
    """The real kernel zygote (run.enter_run) forks one kernel, whose start-up code
    leaves a process in a new session; the kernel's launcher then goes, as at a notebook's end."""
    with real_zygote(tmp_path, SLOT_B) as (start, uid, logs):
        zygote_and_sandbox = set(_processes_of(uid))
        conn, pidfd, _ = start(LEAVE_ONE_BEHIND)
        deadline = time.monotonic() + 120
        while len(_sessions(set(_processes_of(uid)) - zygote_and_sandbox)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)  # the kernel's session, and the one it left
        assert len(_sessions(set(_processes_of(uid)) - zygote_and_sandbox)) >= 2, \
            (logs / "kernel.log").read_text()[-2000:]
        conn.close()  # the notebook ends: its launcher goes
        os.close(pidfd)
        time.sleep(3)
        left = set(_processes_of(uid)) - zygote_and_sandbox
    assert left == set(), f"{len(left)} process(es) of the kernel outlived its notebook"


ASK_THE_ZYGOTE = """import socket
zygote = socket.socket(socket.AF_UNIX)
zygote.settimeout(60)
zygote.connect({address!r})
try:
    socket.send_fds(zygote, [b'{{"cwd": "/tmp", "env": {{}}, "argv": []}}\\n'], [2])
    answer = repr(zygote.recv(4096))
except OSError as error:  # the zygote hung up first
    answer = repr(error)
open("answer", "w").write(answer)
"""


def test_a_kernel_cannot_ask_the_zygote_for_a_kernel_of_its_own(tmp_path):
    """A kernel of its own would outlive the notebook (the zygote kills everything only when no
    kernel it serves runs): a process of the sandbox that connects to the zygote gets nothing."""
    with real_zygote(tmp_path, SLOT_B) as (start, _, logs):
        address = tmp_path / "shared" / nb_run.ZYGOTE_FOLDER / kernel_zygote.SOCKET_NAME
        conn, pidfd, work = start(ASK_THE_ZYGOTE.format(address=str(address)))
        deadline = time.monotonic() + 120
        answer = ""
        while not answer and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = (work / "answer").read_text() if (work / "answer").exists() else ""
        conn.close()
        os.close(pidfd)
    assert answer and "pid" not in answer, f"the zygote answered a kernel: {answer!r} " \
        + (logs / "kernel.log").read_text()[-2000:]


HIJACKS = ("sitecustomize.py", "usercustomize.py", "json.py", "shutil.py", "tempfile.py", "select.py",
           "signal.py", "socket.py", "stat.py", "autograder/__init__.py", "autograder/sandbox/forked.py",
           "autograder/notebooks/kernel_zygote.py", "autograder/notebooks/run.py", "evil.pth")


def test_the_launcher_imports_nothing_from_the_notebooks_folder(kernel_run, tmp_path):
    """The launcher runs as the grader with the student's autograded folder as its working
    folder: files there named like modules it imports (or like site hooks) must stay unread."""
    _, shared = kernel_run
    marker = tmp_path / "hijacked"
    marker.mkdir()
    notebook_dir, run_dir = tmp_path / "autograded", tmp_path / "run"
    (notebook_dir / "autograder").mkdir(parents=True)
    run_dir.mkdir()
    for name in HIJACKS:
        hook = f"import os; open({str(marker)!r} + '/' + {name.replace('/', '_')!r}, 'w').close()\n"
        (notebook_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (notebook_dir / name).write_text(hook if not name.endswith(".pth") else "import os; " + hook)
    done = _launch(shared, _nbgrader_file(shared, "kernel-5678.json"), notebook_dir, run_dir)
    assert "no-zygote.sock" in done.stderr or "FileNotFoundError" in done.stderr, done.stderr[-2000:]
    assert list(marker.iterdir()) == [], f"the launcher ran the student's {sorted(p.name for p in marker.iterdir())}"


def test_no_privileges_and_no_further_namespaces_inside(kernel_run):
    box, _ = kernel_run
    rc, out = _run(box, """
        import ctypes, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        print("caps", status["CapEff"].strip(), status["CapPrm"].strip(), "nnp", status["NoNewPrivs"].strip())
        libc = ctypes.CDLL(None, use_errno=True)
        for name, flag in (("user", 0x10000000), ("mount", 0x00020000), ("net", 0x40000000)):
            print("unshare", name, "ok" if libc.unshare(flag) == 0 else "refused")
        suid = [line.split()[4] for line in open("/proc/self/mountinfo")
                if line.split()[4].startswith("/usr") and "nosuid" not in line.split()[5]]
        print("suid mounts", suid)
    """)
    assert rc == 0, out
    assert "caps 0000000000000000 0000000000000000 nnp 1" in out, out
    assert "unshare user ok" not in out and "unshare mount ok" not in out and "unshare net ok" not in out, out
    assert "suid mounts []" in out, out


# --------------------------------------------------------------------------------------------
# READ: the grader's environment and processes outside
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("view", ["kernel", "judge"])
def test_neither_the_graders_environment_nor_its_processes_are_visible(view, request, monkeypatch):
    from autograder.judge import grader

    monkeypatch.setenv("CS231N_GRADER_SECRET", "s3cret-token-9917")
    if view == "kernel":
        box, _ = request.getfixturevalue("kernel_run")
        env = nb_run._kernel_env({}, box.cwd)
    else:
        box, _ = request.getfixturevalue("judge_box")
        env = grader._env("/tmp")
    code = """
        import os
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                data = open(f"/proc/{pid}/environ", "rb").read() + open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"s3cret" + b"-token" in data:  # split: this code is in our own cmdline
                found.append(pid)
        print("secret in", found, "pids", len([p for p in os.listdir("/proc") if p.isdigit()]))
    """
    rc, out = _run(box, code, env=env)
    assert rc == 0 and "secret in []" in out, out
    # bwrap's init and this process: nothing of the grader's, nothing of another run
    assert int(out.split("pids")[1]) <= 2, f"the sandbox sees processes other than its own: {out}"


@pytest.mark.parametrize("view", ["kernel", "judge"])
def test_no_process_inside_can_lower_its_oom_priority(view, request):
    """The grader sets oom_score_adj 1000 before bwrap starts; /proc is read-only inside, so
    neither the process nor a child of it can write it back to 0 (or any /proc file)."""
    box, _ = request.getfixturevalue("kernel_run" if view == "kernel" else "judge_box")
    code = """
        import os
        def attempt(path, value):
            try:
                with open(path, "w") as f:
                    f.write(value)
                return "written"
            except OSError as e:
                return type(e).__name__
        if os.fork() == 0:  # a child: the same
            print("child", attempt("/proc/self/oom_score_adj", "0"), open("/proc/self/oom_score_adj").read().strip(),
                  flush=True)
            os._exit(0)
        os.wait()
        print("self", attempt("/proc/self/oom_score_adj", "0"), attempt("/proc/self/oom_adj", "-17"),
              attempt("/proc/self/comm", "x"), open("/proc/self/oom_score_adj").read().strip())
    """
    rc, out = _run(box, code)
    assert rc == 0, out
    assert "child OSError 1000" in out and "self OSError OSError OSError 1000" in out, out


def test_the_judge_cannot_reach_the_instructors_package_through_site_packages(judge_box):
    """The venv's site-packages is bound in every sandbox; the editable install of the project
    left its finder there, which maps `cs231n` and `autograder` to the instructor's tree."""
    box, w = judge_box
    rc, out = _run(box, """
        import glob, importlib, sys
        sys.path[:] = [p for p in sys.path if p] + [sys.argv[1]]
        for finder in glob.glob(sys.argv[1] + "/__editable__*finder.py"):
            name = finder.rsplit("/", 1)[1][:-3]
            try:
                importlib.import_module(name).install()
                print("finder installed", name)
            except Exception as e:
                print("finder failed", type(e).__name__)
        for module in ("cs231n.layers", "cs231n.fast_layers", "autograder.hidden.cases", "autograder.judge.grader"):
            try:
                found = importlib.import_module(module)
                print("imported", module, getattr(found, "__file__", ""))
            except BaseException as e:
                print("refused", module, type(e).__name__)
        # the compiled fast layers (fast_layers*.so, the im2col_cython of the .pyx) or cs231n's source
        print("sos", glob.glob(sys.argv[1] + "/**/fast_layers*", recursive=True)
              + glob.glob(sys.argv[1] + "/**/*im2col*.so", recursive=True) + glob.glob(sys.argv[1] + "/cs231n*/*.py"))
    """, sandbox.site_packages(), env={"PATH": "/usr/bin:/bin"})
    assert rc == 0, out
    assert "imported" not in out and out.count("refused") == 4, out
    assert "sos []" in out, out


# --------------------------------------------------------------------------------------------
# SEND BACK: abstract unix sockets, signals, kernel keyrings, POSIX message queues
# --------------------------------------------------------------------------------------------
ABSTRACT_LISTEN = """
    import socket, sys, time
    s = socket.socket(socket.AF_UNIX)
    s.bind(b"\\0" + sys.argv[1].encode())
    s.listen(5)
    print("listening", flush=True)
    s.settimeout(60)
    try:
        s.accept()
        print("reached", flush=True)
    except OSError:
        pass
"""


def _box_for(slot, tmp_path):
    uid, gid = _user(slot)
    tmp_path.chmod(0o755)
    return sandbox.Sandbox(cwd=str(tmp_path), ro=(str(tmp_path),), uid=uid, gid=gid, limits=sandbox.Limits())


def test_abstract_unix_sockets_do_not_cross_the_sandbox(tmp_path):
    import socket as socketlib

    host = socketlib.socket(socketlib.AF_UNIX)
    host_name = f"cs231n-redteam-host-{os.getpid()}"
    host.bind(b"\0" + host_name.encode())
    host.listen(5)
    host.settimeout(0.5)
    other_name = f"cs231n-redteam-other-{os.getpid()}"
    other = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(ABSTRACT_LISTEN), other_name],
                                    _box_for(SLOT_B, tmp_path), env={}, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "listening"
        rc, out = _run(_box_for(SLOT_A, tmp_path), """
            import socket, sys
            for name in sys.argv[1:]:
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(b"\\0" + name.encode())
                    print("connected", name)
                except OSError as e:
                    print("refused", name, type(e).__name__)
        """, host_name, other_name)
        assert rc == 0 and "connected" not in out and out.count("refused") == 2, out
        with pytest.raises(OSError):
            host.accept()
    finally:
        sandbox.kill_tree(other)
        host.close()
    assert "reached" not in other.stdout.read()


def test_kill_minus_one_reaches_nothing_outside_the_sandbox(tmp_path):
    uid, gid = _user(SLOT_A)
    # a process of the same host user outside any sandbox, and another sandbox of that user
    outside = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "sleep", "120"])
    sibling = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", "import time; time.sleep(120)"],
                                      _box_for(SLOT_A, tmp_path), env={})
    try:
        time.sleep(1)
        rc, out = _run(_box_for(SLOT_A, tmp_path), """
            import os, signal
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for pid in range(2, 40000, 1):  # every pid number: only our namespace's exist here
                try:
                    os.kill(pid, 0)
                except OSError:
                    continue
                if pid != os.getpid():
                    print("can signal", pid)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError as e:
                print("kill -1:", e)
            print("done")
        """)
        time.sleep(0.5)
        assert outside.poll() is None, "a sandboxed kill(-1) killed a process outside its sandbox"
        assert sibling.poll() is None, "a sandboxed kill(-1) killed another sandbox of the same user"
        assert "can signal" not in out or all(int(line.split()[2]) < 10 for line in out.splitlines()
                                               if line.startswith("can signal")), out
    finally:
        outside.kill()
        outside.wait()
        sandbox.kill_tree(sibling)
        sandbox.end_user_processes(uid)


KEYCTL = """
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    ADD_KEY, KEYCTL = 248, 250  # x86_64
    KEY_SPEC_USER_KEYRING, KEYCTL_SEARCH = -4, 10
    name = sys.argv[2].encode()
    if sys.argv[1] == "leave":
        payload = b"answers of the student graded before you"
        got = libc.syscall(ADD_KEY, b"user", name, payload, len(payload), KEY_SPEC_USER_KEYRING)
        print("added" if got > 0 else f"add failed {ctypes.get_errno()}")
    else:
        got = libc.syscall(KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", name, 0)
        print("found" if got > 0 else f"not found {ctypes.get_errno()}")
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86_64")
def test_a_kernel_keyring_does_not_carry_data_to_the_next_student_of_the_same_worker(tmp_path):
    """One worker grades its students one after another with the same user (UID_BASE + its pid):
    whatever a run leaves in that user's keyring must not reach the next run."""
    name = f"cs231n-redteam-{os.getpid()}"
    rc, out = _run(_box_for(SLOT_A, tmp_path), KEYCTL, "leave", name)
    assert rc == 0, out
    rc, later = _run(_box_for(SLOT_A, tmp_path), KEYCTL, "look", name)
    assert rc == 0 and "not found" in later, f"left: {out.strip()}; next run: {later.strip()}"


def test_posix_message_queues_and_shm_do_not_cross_sandboxes(tmp_path):
    code = """
        import ctypes, os, sys
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        rt.mq_open.restype = ctypes.c_int
        name = b"/cs231n-redteam-" + sys.argv[2].encode()
        if sys.argv[1] == "leave":
            q = rt.mq_open(name, os.O_CREAT | os.O_RDWR, 0o666, None)
            rt.mq_send(q, b"psst", 4, 0)
            print("left" if q >= 0 else f"failed {ctypes.get_errno()}")
        else:
            q = rt.mq_open(name, os.O_RDONLY)
            print("found" if q >= 0 else f"not found {ctypes.get_errno()}")
    """
    name = str(os.getpid())
    rc, out = _run(_box_for(SLOT_A, tmp_path), code, "leave", name)
    assert rc == 0 and "left" in out, out
    rc, out = _run(_box_for(SLOT_A, tmp_path), code, "look", name)
    assert rc == 0 and "not found" in out, out
    assert not Path(f"/dev/mqueue/cs231n-redteam-{name}").exists()


# --------------------------------------------------------------------------------------------
# KEEP: processes that leave their session
# --------------------------------------------------------------------------------------------
def test_a_process_that_leaves_its_session_dies_with_the_sandbox(tmp_path):
    uid, _ = _user(SLOT_A)
    rc, out = _run(_box_for(SLOT_A, tmp_path), """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                import signal
                for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                    signal.signal(s, signal.SIG_IGN)
                time.sleep(300)
            os._exit(0)
        time.sleep(0.5)
        print("left one behind")
    """)
    assert "left one behind" in out, out
    time.sleep(1)
    # no end_user_processes: the PID namespace alone must have taken it
    assert sandbox.end_user_processes(uid) == 0, "a double-forked process outlived its sandbox"


# --------------------------------------------------------------------------------------------
# COST: memory the rlimits do not see (memfds, inodes of empty files on the tmpfs)
# --------------------------------------------------------------------------------------------
GROUP_MB = 256  # a small run group, so that reaching it is cheap


def _in_small_group(tmp_path, code):
    """Run code in a sandbox whose run group allows GROUP_MB; returns (returncode, output)."""
    if sandbox.limits_mode() == "rlimits":
        pytest.skip("no cgroup here: rlimits only, which do not bound this (see docs/isolation.md)")
    limits = sandbox.Limits(memory_mb=128, fsize_mb=16, nofile=256)
    group = sandbox.RunGroup(GROUP_MB, limits.nproc)
    uid, gid = _user(SLOT_A)
    tmp_path.chmod(0o755)
    box = sandbox.Sandbox(cwd=str(tmp_path), ro=(str(tmp_path),), uid=uid, gid=gid, limits=limits)
    try:
        return _run(box, code, group=group, timeout=300)
    finally:
        group.close()


def _last_count(out):
    return max([int(line) for line in out.split() if line.isdigit()] or [0])


def test_memory_in_memfds_is_bounded_by_the_runs_cgroup(tmp_path):
    """memfd pages are not in the address space (RLIMIT_AS does not see them) and not on a sized
    tmpfs; only the run's cgroup bounds them."""
    rc, out = _in_small_group(tmp_path, """
        import os
        chunk, fds, total = b"x" * (16 << 20), [], 0
        while total < 1024:
            fd = os.memfd_create("hoard")
            os.write(fd, chunk)
            fds.append(fd)
            total += 16
            print(total, flush=True)
        print("held it all")
    """)
    assert "held it all" not in out and _last_count(out) < GROUP_MB + 32, out[-300:]


def test_empty_files_on_the_tmpfs_are_bounded_by_the_runs_cgroup(tmp_path):
    """Empty files use no tmpfs blocks (its size does not bound them) and /tmp allows about
    3 million inodes on this machine (about 0.9 KB of kernel memory each): the run's cgroup,
    which is charged for them, must stop the student first."""
    rc, out = _in_small_group(tmp_path, """
        import os
        n = 0
        for folder in ("/tmp", "/dev/shm"):
            try:
                while n < 600000:
                    open(f"{folder}/{n}", "w").close()
                    n += 1
                    if n % 10000 == 0:
                        print(n, flush=True)
            except OSError:
                pass
        print("made them all")
    """)
    assert "made them all" not in out and _last_count(out) < 600000, out[-300:]


def test_a_kernels_log_on_the_graders_disk_is_bounded(kernel_run, tmp_path):
    """A kernel's stdout and stderr go to a log file of the grader's (launcher.launch opens
    it, the zygote hands it over); ten processes printing at once must not grow it past the
    kernels' file size limit."""
    box, _ = kernel_run
    log_path = tmp_path / "kernel-1.log"
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent("""
            import os, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            for _ in range(9):
                if os.fork() == 0:
                    break
            chunk = b"y" * (1 << 20)
            for _ in range(100):
                try:
                    os.write(1, chunk)
                except OSError:
                    break
        """)], box, env={}, stdout=log, stderr=log)
        proc.wait(timeout=120)
    finally:
        os.close(log)
        sandbox.kill_tree(proc)
    limit = nb_run.KERNEL_LIMITS["fsize_mb"] << 20
    assert 0 < log_path.stat().st_size <= limit, log_path.stat().st_size
