"""Attacks on the kernel launcher and zygote (docs/isolation.md): the grader's side of a notebook
kernel, which runs outside the sandbox (as root) on paths and sockets a kernel can reach: what a
kernel can make it chown, connect to or import, what it can keep past its notebook, and what it
can write to the grader's disk through it. The run is the product's (conftest.run_spec: laid out
by notebook_run.enter_run, its zygote running); each attack asserts the SAFE outcome.
"""
import json
import os
import select
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from process_tree import pids_where, stat_fields

from autograder.config import ROOT
from autograder.notebooks import kernel_zygote
from autograder.notebooks import run as notebook_run
from autograder.sandbox import bubblewrap as sandbox
from product_sandboxes import PYTHON, SLOT_B, real_zygote
from product_sandboxes import run_code as _run

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not sandbox.isolation_available(),
                                 reason="per-student users and cgroups need root; the sandbox needs bwrap")]


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
        attempt("rename a work folder", lambda: os.rename({box.cwd!r}, shared + "/work-b"))
        attempt("plant in the ipc folder's parent", lambda: os.symlink("/", shared + "/runtime2"))
        print("reached:", report)
    """
    rc, out = _run(box, code)
    assert rc == 0 and "reached: []" in out, out
    assert (shared / "code" / "kernel_zygote.py").read_bytes() == Path(kernel_zygote.__file__).read_bytes()


def _nbgrader_file(shared, name):
    """A connection file as nbgrader writes it: root's, in nbgrader's root-only runtime folder."""
    folder = shared / notebook_run.NBGRADER_RUNTIME
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / name).write_text("{}")
    return folder / name


def _launcher(spec, connection_file, notebook_dir, run_dir, address=None):
    """The kernel launcher (launcher.py, run as the grader by jupyter_client) for one
    notebook of the run spec, told the zygote listens at address (default: a name in the
    zygote's folder, root's as enter_run leaves it, where nothing listens: it fails after
    preparing the kernel's files)."""
    spec_file = run_dir / "kernel-sandbox.json"
    spec.save(spec_file)
    address = address or Path(spec.shared) / notebook_run.ZYGOTE_FOLDER / "no-zygote.sock"
    env = {"PATH": os.environ["PATH"], notebook_run.SPEC_ENV: str(spec_file), kernel_zygote.SOCKET_ENV: str(address)}
    return subprocess.Popen([PYTHON, str(ROOT / "autograder" / "notebooks" / "launcher.py"), "-f",
                             str(connection_file)], cwd=notebook_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _launch(spec, connection_file, notebook_dir, run_dir):
    """_launcher run to its end: (its exit code, its stderr)."""
    launcher = _launcher(spec, connection_file, notebook_dir, run_dir)
    try:
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
        launcher.wait()
    return launcher.returncode, err


def test_a_kernel_cannot_make_the_launcher_chown_a_host_file(kernel_run, run_spec, tmp_path):
    box, shared = kernel_run
    bait = tmp_path / "gradebook-secret.db"  # root's, 0600, outside every sandbox
    bait.write_text("grades")
    bait.chmod(0o600)
    # the one folder of the run the kernels may write (their ipc sockets): a process left running
    # by the student's earlier notebook plants a link there, named like a connection file
    connection_file = shared / notebook_run.IPC_FOLDER / f"kernel-{os.getpid()}.json"
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
    code, err = _launch(run_spec, connection_file, notebook_dir, run_dir)
    assert code == 1 and "refusing to start the kernel" in err, err[-2000:]
    assert bait.stat().st_uid == 0, f"the launcher gave {bait} to the student's user {bait.stat().st_uid}"


def test_a_kernel_cannot_make_the_launcher_connect_to_a_host_socket(kernel_run, run_spec, tmp_path):
    import socket as socketlib

    box, shared = kernel_run
    private = tmp_path / "private"  # like /run/postgresql: the grader's, out of every sandbox
    private.mkdir(mode=0o700)
    host = socketlib.socket(socketlib.AF_UNIX)
    host.bind(str(private / "db.sock"))
    host.listen(5)
    host.settimeout(30)
    zygote = shared / notebook_run.IPC_FOLDER / kernel_zygote.SOCKET_NAME
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
    launcher = _launcher(run_spec, connection_file, notebook_dir, run_dir, address=zygote)
    got, deadline = b"", time.monotonic() + 120
    try:
        while not got and (launcher.poll() is None and time.monotonic() < deadline
                           or select.select([host], [], [], 0)[0]):  # until it ends, or connects
            if select.select([host], [], [], 0.2)[0]:
                conn, _ = host.accept()
                conn.settimeout(10)
                got = conn.recv(4096) or b"(connected, sent nothing yet)"
                conn.close()
    finally:
        launcher.kill()
        _, err = launcher.communicate()
        host.close()
    assert launcher.returncode == 1 and "refusing to start the kernel" in err, err[-2000:]
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
    """The real kernel zygote (notebook_run.enter_run) forks one kernel, whose start-up code
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
        address = tmp_path / "shared" / notebook_run.ZYGOTE_FOLDER / kernel_zygote.SOCKET_NAME
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


def test_the_launcher_imports_nothing_from_the_notebooks_folder(kernel_run, run_spec, tmp_path):
    """The launcher runs as the grader with the student's autograded folder as its working
    folder: files there named like modules it imports (or like site hooks) must stay unread."""
    _, shared = kernel_run
    marker = tmp_path / "hijacked"
    marker.mkdir()
    notebook_dir, run_dir = tmp_path / "autograded", tmp_path / "run"
    (notebook_dir / "autograder").mkdir(parents=True)
    run_dir.mkdir()
    for name in HIJACKS:
        (notebook_dir / name).parent.mkdir(parents=True, exist_ok=True)
        hook = f"import os; open({str(marker)!r} + '/' + {name.replace('/', '_')!r}, 'w').close()\n"
        (notebook_dir / name).write_text(hook if not name.endswith(".pth") else "import os; " + hook)
    _, err = _launch(run_spec, _nbgrader_file(shared, "kernel-5678.json"), notebook_dir, run_dir)
    assert "no-zygote.sock" in err or "FileNotFoundError" in err, err[-2000:]
    assert list(marker.iterdir()) == [], f"the launcher ran the student's {sorted(p.name for p in marker.iterdir())}"


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
    limit = notebook_run.KERNEL_LIMITS["fsize_mb"] << 20
    assert 0 < log_path.stat().st_size <= limit, log_path.stat().st_size
