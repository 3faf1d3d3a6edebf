"""Attacks on the sandbox walls (docs/isolation.md): what student code inside a kernel's or the
judge's sandbox can read, write, keep or send back; beyond test_sandbox_in_a_batch.py and
test_notebook_kernels.py (test_kernel_launcher.py: the grader's side of a kernel).

Each attack runs student code in the product's own sandboxes (product_sandboxes.py), not
through a whole grading run, and asserts the SAFE outcome:
- kernel: notebook_run.run_sandbox over a run's shared folder laid out by the real
  notebook_run.enter_run (its zygote running), in a work folder made as the launcher makes it;
- judge: the Sandbox of grader._sandboxed_run over a submitted package, as judge_package runs it.
"""
import ast
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from autograder.notebooks import run as notebook_run
from autograder.config import ROOT
from autograder.sandbox import bubblewrap as sandbox
from product_sandboxes import PYTHON, SLOT_A, SLOT_B
from product_sandboxes import run_code as _run

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not sandbox.isolation_available(),
                                 reason="per-student users and cgroups need root; the sandbox needs bwrap")]



def _user(number):
    return sandbox.student_user(number)


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
    from autograder.judge import process

    monkeypatch.setenv("CS231N_GRADER_SECRET", "s3cret-token-9917")
    if view == "kernel":
        box, _ = request.getfixturevalue("kernel_run")
        env = notebook_run._kernel_env({}, box.cwd)
    else:
        box, _ = request.getfixturevalue("judge_box")
        env = process.worker_env("/tmp")
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
def test_nothing_of_the_instructors_tree_is_visible_inside(view, request):
    """The hidden cases, the reference package, the grader's code and the course folder live in
    the instructor's tree (and the course's): no path of it exists inside (the tree's folder
    itself only where a bind lies under it, e.g. a clone's own .venv, holding nothing else), and
    no file anywhere the sandbox can list is a copy of the hidden cases."""
    from autograder.hidden import cases

    box, _ = request.getfixturevalue("kernel_run" if view == "kernel" else "judge_box")
    marker = Path(cases.__file__).read_text().splitlines()[0]  # the hidden cases' first line
    bound = sorted({Path(p).relative_to(ROOT).parts[0] for _, p in box.binds() if Path(p).is_relative_to(ROOT)})
    rc, out = _run(box, """
        import os, sys
        root, marker = sys.argv[1], sys.argv[2]
        print("listing", sorted(os.listdir(root)) if os.path.isdir(root) else [])
        for path in (root + "/autograder/hidden/cases.py", root + "/cs231n/layers.py", root + "/courses"):
            print("exists" if os.path.exists(path) else "absent", path)
        copies = []
        for folder, dirs, files in os.walk("/"):
            if folder in ("/proc", "/sys", "/dev"):
                dirs[:] = []
                continue
            for name in files:
                if name.endswith(".py") and "case" in name:
                    try:
                        with open(os.path.join(folder, name), errors="replace") as f:
                            if f.readline().rstrip() == marker:
                                copies.append(os.path.join(folder, name))
                    except OSError:
                        pass
        print("copies", copies)
    """, str(ROOT), marker)
    assert rc == 0 and "exists" not in out and "copies []" in out, out
    listing = ast.literal_eval(out.split("listing ", 1)[1].split("\n", 1)[0])
    assert set(listing) <= set(bound), (listing, bound)


@pytest.mark.parametrize("view", ["kernel", "judge"])
def test_no_process_inside_can_see_or_raise_its_limits(view, request):
    """The run's limits are the cgroup the grader made (under /sys/fs/cgroup) and the rlimits
    set before bwrap started: inside, no /sys is mounted at all, and no hard rlimit can be raised
    (no CAP_SYS_RESOURCE), by the process or by a child of it."""
    box, _ = request.getfixturevalue("kernel_run" if view == "kernel" else "judge_box")
    rc, out = _run(box, """
        import os, resource
        print("sys", sorted(os.listdir("/sys")) if os.path.isdir("/sys") else "absent")
        def raise_all():
            raised = []
            for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
                which = getattr(resource, name)
                soft, hard = resource.getrlimit(which)
                if hard == resource.RLIM_INFINITY:
                    raised.append(name + " unbounded")
                    continue
                try:
                    resource.setrlimit(which, (hard + 1, hard + 1))
                    raised.append(name)
                except (ValueError, OSError):
                    pass
            return raised
        if os.fork() == 0:
            print("child raised", raise_all(), flush=True)
            os._exit(0)
        os.wait()
        print("self raised", raise_all())
    """)
    assert rc == 0, out
    assert "sys absent" in out or "sys []" in out, out
    assert "child raised []" in out and "self raised []" in out, out


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


def test_abstract_unix_sockets_do_not_cross_the_sandbox(judged_as):
    import socket as socketlib

    host = socketlib.socket(socketlib.AF_UNIX)
    host_name = f"cs231n-redteam-host-{os.getpid()}"
    host.bind(b"\0" + host_name.encode())
    host.listen(5)
    host.settimeout(0.5)
    other_name = f"cs231n-redteam-other-{os.getpid()}"
    other = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(ABSTRACT_LISTEN), other_name],
                                    judged_as(SLOT_B), env={}, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "listening"
        rc, out = _run(judged_as(SLOT_A), """
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


def test_kill_minus_one_reaches_nothing_outside_the_sandbox(judged_as):
    uid, gid = _user(SLOT_A)
    # a process of the same host user outside any sandbox, and another sandbox of that user
    outside = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "sleep", "120"])
    sibling = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", "import time; time.sleep(120)"],
                                      judged_as(SLOT_A), env={})
    try:
        time.sleep(1)
        rc, out = _run(judged_as(SLOT_A), """
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
def test_a_kernel_keyring_does_not_carry_data_to_the_next_student_of_the_same_worker(judged_as):
    """One worker grades its students one after another with the same user (UID_BASE + its pid):
    whatever a run leaves in that user's keyring must not reach the next run."""
    name = f"cs231n-redteam-{os.getpid()}"
    rc, out = _run(judged_as(SLOT_A), KEYCTL, "leave", name)
    assert rc == 0, out
    rc, later = _run(judged_as(SLOT_A), KEYCTL, "look", name)
    assert rc == 0 and "not found" in later, f"left: {out.strip()}; next run: {later.strip()}"


def test_posix_message_queues_and_shm_do_not_cross_sandboxes(judged_as):
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
    rc, out = _run(judged_as(SLOT_A), code, "leave", name)
    assert rc == 0 and "left" in out, out
    rc, out = _run(judged_as(SLOT_A), code, "look", name)
    assert rc == 0 and "not found" in out, out
    assert not Path(f"/dev/mqueue/cs231n-redteam-{name}").exists()


# --------------------------------------------------------------------------------------------
# KEEP: processes that leave their session
# --------------------------------------------------------------------------------------------
def test_a_process_that_leaves_its_session_dies_with_the_sandbox(judged_as):
    uid, _ = _user(SLOT_A)
    rc, out = _run(judged_as(SLOT_A), """
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


def _in_small_group(judge_box, code):
    """Run code in the judge's sandbox, in a run group allowing only GROUP_MB (so that reaching
    it is cheap); returns (returncode, output)."""
    if sandbox.limits_mode() == "rlimits":
        pytest.skip("no cgroup here: rlimits only, which do not bound this (see docs/isolation.md)")
    box, _ = judge_box
    group = sandbox.RunGroup(GROUP_MB, box.limits.nproc)
    try:
        return _run(box, code, group=group, timeout=300)
    finally:
        group.close()


def _last_count(out):
    return max([int(line) for line in out.split() if line.isdigit()] or [0])


def test_memory_in_memfds_is_bounded_by_the_runs_cgroup(judge_box):
    """memfd pages are not in the address space (RLIMIT_AS does not see them) and not on a sized
    tmpfs; only the run's cgroup bounds them."""
    rc, out = _in_small_group(judge_box, """
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


def test_empty_files_on_the_tmpfs_are_bounded_by_the_runs_cgroup(judge_box):
    """Empty files use no tmpfs blocks (its size does not bound them) and /tmp allows about
    3 million inodes on this machine (about 0.9 KB of kernel memory each): the run's cgroup,
    which is charged for them, must stop the student first."""
    rc, out = _in_small_group(judge_box, """
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


