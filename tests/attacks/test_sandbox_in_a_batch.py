"""Student code against the sandbox (docs/isolation.md): what it may try to read, write, keep or
send back, from a notebook kernel and from the judge's worker, in one graded batch of the toy
assignment on two workers; plus a fork bomb next to another student's sandbox, and the time a
looping or slow notebook may cost.

Everything the hostile code tries lies in world-readable (or world-writable) places of the host,
so only the sandbox's allow-list stands in its way."""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from course_fixtures import grades_by_name, toy_course, write_toy_submission
from hostile_cells import DEAF_LOOP, fork_bomb
from process_tree import pids_where, running, stat_fields

from autograder.budget import TimeBudget
from autograder.config import PACKAGE, ROOT
from autograder.sandbox import bubblewrap as sandbox
from product_sandboxes import PYTHON, judge_run, package
from user_slots import slot

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not sandbox.isolation_available(),
                                 reason="per-student users and cgroups need root; the sandbox needs bwrap")]

CELL_TIMEOUT = 10
HONEST_MARK = "honest-work-5521"
HOST_SHM_KEY, HOST_MSG_KEY = 0x2315A001, 0x2315A002  # made by the test, in the host's IPC namespace
PROBE_SHM_KEY, PROBE_MSG_KEY = 0x2315A003, 0x2315A004  # made by every sandboxed run
IPC_CREAT = 0o1000
# Each attempt of the probe, in the order of its report ("R": it worked, "-": it failed).
ATTEMPTS = ("classmate's file in the submissions folder", "classmate's collected file", "project tree",
            "other checkout", "course gradebook", "a file under /home", "a file under /root",
            "unix socket under /run", "write into /run/lock", "database-like unix socket",
            "SysV shared memory of another run", "SysV message queue of another run",
            "TCP to the host's 127.0.0.1", "compiled layers by path")

PROBE = '''

def _sysv_seen():  # at import, once per process: SysV objects another run made, then our own
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    seen = (any(libc.shmget(k, 0, 0) >= 0 for k in ({host_shm}, {probe_shm})),
            any(libc.msgget(k, 0) >= 0 for k in ({host_msg}, {probe_msg})))
    libc.shmget({probe_shm}, 1 << 20, {creat} | 0o666)  # left behind on purpose
    libc.msgget({probe_msg}, {creat} | 0o666)
    return seen


_SYSV_SEEN = _sysv_seen()


def relu_forward(x):  # hostile: tries everything, reports in one line
    import ctypes, glob, os, socket
    report = []
    def attempt(action):
        try:
            action()
            report.append("R")
        except Exception:
            report.append("-")
    def read(path):
        with open(path, "rb") as f:
            f.read(1)
    def connect(path):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
    def write(path):
        with open(path, "w") as f:
            f.write("x")
    def tcp():
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    def seen(found):
        if not found:
            raise OSError("none")
    def load_compiled():
        mine = os.path.dirname(os.path.abspath(__file__))
        for path in glob.glob(mine + "/*.so") + glob.glob({project!r} + "/cs231n/*.so"):
            ctypes.CDLL(path)
            return
        raise OSError("none")
    for path in {reads!r}:
        attempt(lambda: read(path))
    attempt(lambda: connect({run_socket!r}))
    attempt(lambda: write("/run/lock/cs231n-was-here"))
    attempt(lambda: connect({db_socket!r}))
    attempt(lambda: seen(_SYSV_SEEN[0]))
    attempt(lambda: seen(_SYSV_SEEN[1]))
    attempt(tcp)
    attempt(load_compiled)
    raise RuntimeError("probe:" + "".join(report))
'''

def _world_readable_folder(parent):
    folder = Path(tempfile.mkdtemp(prefix="cs231n-iso-", dir=parent))
    folder.chmod(0o755)
    return folder


class HostBait:
    """What the probe reaches for: world-readable files, listening sockets and SysV objects of
    the host, each recording whether anything arrived."""

    def __init__(self, top):
        self.files = []
        for place in ("/home", "/root"):
            folder = _world_readable_folder(place)
            (folder / "secret.txt").write_text("secret")
            (folder / "secret.txt").chmod(0o644)
            self.files.append(folder)
        self.checkout = top / "other-checkout"
        shutil.copytree(PACKAGE, self.checkout / "cs231n", ignore=shutil.ignore_patterns("__pycache__"))
        self.sockets, self.seen = [], []
        self.run_socket = self._unix(f"/run/cs231n-iso-{os.getpid()}.sock")
        self.db_folder = _world_readable_folder("/tmp")
        self.db_socket = self._unix(str(self.db_folder / ".s.PGSQL.55432"))
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(5)
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.sockets.append(self.tcp)
        libc = ctypes.CDLL(None, use_errno=True)
        self.shm = libc.shmget(HOST_SHM_KEY, 4096, IPC_CREAT | 0o666)
        self.msg = libc.msgget(HOST_MSG_KEY, IPC_CREAT | 0o666)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _unix(self, path):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        os.chmod(path, 0o777)
        sock.listen(5)
        sock.settimeout(0.2)
        self.sockets.append(sock)
        return path

    def _accept(self):
        while not self.stop.is_set():
            for sock in self.sockets:
                try:
                    conn, addr = sock.accept()
                    self.seen.append(addr)
                    conn.close()
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()
        Path(self.run_socket).unlink(missing_ok=True)
        shutil.rmtree(self.db_folder, ignore_errors=True)
        for folder in self.files:
            shutil.rmtree(folder, ignore_errors=True)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmctl(self.shm, 0, None)  # IPC_RMID
        libc.msgctl(self.msg, 0, None)


class Watcher:
    """Samples the machine's processes while a batch is graded: the host's view (uid) of every
    kernel zygote (and kernel: its fork) and judge worker of a student run."""

    def __init__(self):
        self.samples, self.groups, self.stop = [], set(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        host = os.readlink("/proc/self/ns/pid")
        while not self.stop.is_set():
            for entry in Path("/proc").iterdir():
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    # the grader's side of a sandbox (bwrap, setpriv, the root parent between the
                    # bwraps) names the zygote in its arguments, but runs in the host's PID namespace
                    if argv[0].endswith(b"bwrap") or argv[0].endswith(b"setpriv") or \
                            os.readlink(entry / "ns" / "pid") == host:
                        continue
                    line = b" ".join(argv)
                    kind = ("zygote" if b"kernel_zygote.py" in line else
                            "judge" if b"/judge/worker.py" in line and b"cs231n-judge-" in line else None)
                    # ours: in a student run's cgroup, and started by this test's process (other
                    # graders, e.g. other tests, may run on this machine at the same time)
                    groups = (entry / "cgroup").read_text()
                    if kind and "/cs231n-" in groups and _descends_from(entry, os.getpid()):
                        self.samples.append((kind, entry.stat().st_uid))
                        self.groups.update(line for line in groups.splitlines() if "/cs231n-" in line)
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)

    def close(self):
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all

    top = _world_readable_folder("/srv" if os.path.isdir("/srv") else "/tmp")
    course, release = toy_course(top)
    subs = top / "subs"
    bait = HostBait(top)
    reads = [str(subs / "honest" / "cs231n" / "layers.py"),
             str(course.root / "submitted" / "honest" / "a2" / "cs231n" / "layers.py"),
             str(ROOT / "cs231n" / "layers.py"), str(bait.checkout / "cs231n" / "layers.py"),
             str(course.root / "gradebook.db"), *(str(f / "secret.txt") for f in bait.files)]
    probe = PROBE.format(port=bait.port, project=str(ROOT), reads=reads, run_socket=bait.run_socket,
                         db_socket=bait.db_socket, host_shm=HOST_SHM_KEY, probe_shm=PROBE_SHM_KEY,
                         host_msg=HOST_MSG_KEY, probe_msg=PROBE_MSG_KEY, creat=IPC_CREAT)
    write_toy_submission(release, subs / "honest", solution="def double(x):\n    # " + HONEST_MARK + "\n    return 2 * x")
    write_toy_submission(release, subs / "prober", layers=probe)
    write_toy_submission(release, subs / "prober2", layers=probe)
    write_toy_submission(release, subs / "bomb", cells=[fork_bomb(hold_seconds=30)])
    write_toy_submission(release, subs / "deaf", cells=[DEAF_LOOP] * 3)
    for folder, dirs, files in os.walk(top):  # all of it world-readable: only the sandbox stands between
        for name in dirs + files:
            os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
    assert not [c.error for c in collect(subs, course) if c.error]
    for folder, dirs, files in os.walk(course.root):
        for name in dirs + files:
            os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
    kw = {"force": True, "progress": False, "budget": TimeBudget(judge_case=5, cell=CELL_TIMEOUT)}
    alone, failures = grade_all(course, students=["honest"], workers=1, **kw)
    assert failures == {}
    watcher = Watcher()
    try:
        results, failures = grade_all(course, workers=2, **kw)
    finally:
        watcher.close()
        time.sleep(0.5)
        bait.close()
    yield SimpleNamespace(course=course, alone=alone["honest"], results=results, failures=failures,
                          bait=bait, watcher=watcher, release=release)
    shutil.rmtree(top, ignore_errors=True)


def _code_outputs(course, student):
    """[(cell source, [output text])] of the student's autograded notebook's code cells."""
    nb = nbformat.read(course.step_dir("autograded", student) / "Toy.ipynb", as_version=4)
    return [(c.source, [o.get("text") or f"{o.get('ename')}: {o.get('evalue')}" for o in c.outputs])
            for c in nb.cells if c.cell_type == "code"]


def _reports(text):
    return [part.split()[0].rstrip("'\".,") for part in text.split("probe:")[1:]]


def test_the_batch_finishes_and_the_honest_student_keeps_its_lone_score(batch):
    assert batch.failures == {}
    assert set(batch.results) == {"honest", "prober", "prober2", "bomb", "deaf"}
    honest = batch.results["honest"]
    assert honest.notebooks == batch.alone.notebooks
    assert honest.functions == batch.alone.functions
    assert grades_by_name(honest)["test_double"].score_before_check == 2 and grades_by_name(honest)["test_relu"].auto_score == 3
    assert honest.isolation == sandbox.limits_mode() != ""


@pytest.mark.parametrize("student", ["prober", "prober2"])
def test_a_kernel_reaches_nothing_outside_its_binds(batch, student):
    text = "\n".join(t for _, outs in _code_outputs(batch.course, student) for t in outs)
    reports = _reports(text)
    assert reports, f"the probe did not run in the kernel: {text[:2000]}"
    for report in reports:
        assert len(report) == len(ATTEMPTS), report
        # the kernel needs the compiled layers of its own work copy; everything else fails
        reached = [what for what, got in zip(ATTEMPTS, report) if got == "R" and what != "compiled layers by path"]
        assert reached == [], f"{student}'s kernel reached {reached}"
    assert HONEST_MARK not in text


@pytest.mark.parametrize("student", ["prober", "prober2"])
def test_the_judge_reaches_nothing_outside_its_binds_not_even_compiled_layers(batch, student):
    messages = [f.message for f in batch.results[student].functions if f.task == "relu_forward"]
    reports = [r for m in messages for r in _reports(m)]
    assert reports and len(reports) == len(messages), messages
    for report in reports:
        reached = [what for what, got in zip(ATTEMPTS, report) if got == "R"]
        assert reached == [], f"{student}'s judge reached {reached}"


def test_nothing_arrived_at_the_hosts_sockets(batch):
    assert batch.bait.seen == []
    assert not Path("/run/lock/cs231n-was-here").exists()


def test_sysv_objects_made_in_a_run_are_gone_with_it(batch):
    for table, key in (("shm", PROBE_SHM_KEY), ("msg", PROBE_MSG_KEY)):
        keys = [int(line.split()[0]) for line in Path(f"/proc/sysvipc/{table}").read_text().splitlines()[1:]]
        assert key not in keys, f"a SysV {table} object of a sandboxed run outlived it"


def test_the_host_sees_every_sandboxed_process_as_an_unprivileged_user_and_none_is_left(batch):
    kinds = {kind for kind, _ in batch.watcher.samples}
    assert kinds == {"zygote", "judge"}, f"sampled only {kinds}"
    uids = {uid for _, uid in batch.watcher.samples}
    assert all(uid >= sandbox.UID_BASE for uid in uids), uids
    assert len(uids) >= 2, "two workers grade as two users"
    assert batch.watcher.groups
    assert pids_where(lambda e: running(e) and batch.watcher.groups & set((e / "cgroup").read_text().splitlines())) == [], \
        "a process of a student run outlived it"


def test_a_fork_bomb_gains_nothing_and_is_stopped(batch):
    text = "\n".join(t for _, outs in _code_outputs(batch.course, "bomb") for t in outs)
    assert "fork bomb stopped by BlockingIOError" in " ".join(text.split()), text[:2000]
    grades = grades_by_name(batch.results["bomb"])
    assert grades["test_double"].score_before_check == 2 and grades["test_relu"].auto_score == 3


def test_a_loop_that_ignores_interrupts_is_ended_by_killing_its_kernel(batch):
    result = batch.results["deaf"]
    assert result.timed_out == ["Toy"]
    assert result.nbgrader_ok, "the notebook is graded, not failed"
    cells = _code_outputs(batch.course, "deaf")
    deaf = [outs for source, outs in cells if "SIG_IGN" in source]
    assert len(deaf) == 3
    assert any("CellTimeoutError" in t and f"{CELL_TIMEOUT} s" in t for t in deaf[0])
    after = cells[[source for source, _ in cells].index(DEAF_LOOP) + 1:]
    assert after and all(any(t.startswith("NotRun: not run") for t in outs) for _, outs in after)
    assert all((g.auto_score or 0) == 0 for g in grades_by_name(result).values())
    assert batch.results["honest"].timed_out == []


def test_a_notebook_budget_bounds_many_slow_cells(batch, tmp_path):
    """Eight cells of 3 s each, every one within the 10 s cell timeout, in a 12 s budget: the
    notebook stops when the budget is used up, by killing its kernel."""
    from autograder.grading.grade import prepare
    from autograder.grading.grade_one import GradeJob, grade_submission

    course = batch.course
    slow = course.root / "submitted" / "slow" / "a2"
    write_toy_submission(batch.release, slow, cells=[f"import time\ntime.sleep(3)\nprint('slept {i}')" for i in range(8)])
    base, template_db, scratch = prepare(course)
    job = GradeJob("slow", course.assignment_id, str(slow), str(base), str(template_db), str(course.source_root),
                   str(scratch), dataset="digits", course_root=str(course.root),
                   budget=TimeBudget(cell=CELL_TIMEOUT, judge_case=5, notebook=12))
    result = grade_submission(job)
    assert result.timed_out == ["Toy"]
    nb = nbformat.read(Path(result.autograded_dir) / "Toy.ipynb", as_version=4)
    texts = [o.get("text") or f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
             for o in c.outputs]
    slept = sum("slept" in t for t in texts)
    assert slept < 8, "the budget did not stop the notebook"
    assert any(t.startswith(("NotRun:", "CellTimeoutError:")) for t in texts)
    shutil.rmtree(result.scratch, ignore_errors=True)


FORK_MANY = """import os, sys, time
pids = []
try:
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            time.sleep(int(sys.argv[2]))
            os._exit(0)
        pids.append(pid)
except OSError as e:
    print("stopped by", type(e).__name__, "after", len(pids), flush=True)
else:
    print("forked", len(pids), flush=True)
time.sleep(int(sys.argv[2]))
"""


def test_a_fork_bomb_does_not_stop_another_students_sandbox(tmp_path):
    """A fork bomb in one judge run's sandbox (the product's box and run group, judge_run) is
    stopped at its own process limit; another student's run forks as it likes meanwhile, and
    nothing of the bomb outlives its sandbox."""
    bomb_slot, calm_slot = slot(6), slot(7)
    with judge_run(package(tmp_path / "bomber"), bomb_slot) as bomber, \
            judge_run(package(tmp_path / "calm"), calm_slot) as other:
        proc = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", FORK_MANY, "1000", "30"], bomber.box,
                                       group=bomber.group, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().startswith("stopped by BlockingIOError")
            calm = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", FORK_MANY, "20", "0"], other.box,
                                           group=other.group, stdout=subprocess.PIPE, text=True)
            out = calm.communicate(timeout=60)[0]
            assert out.startswith("forked 20"), out
        finally:
            sandbox.kill_tree(proc)
            for _ in range(100):  # bwrap's --die-with-parent takes every forked child
                if not bomber.group.pids():
                    break
                time.sleep(0.1)
            left = bomber.group.pids()
    assert not left, "the bomb outlived its sandbox"


WORKER = """import json, sys
from autograder.budget import TimeBudget
from autograder.grading.grade_one import GradeJob, grade_submission
job = json.loads(sys.argv[1])
grade_submission(GradeJob(**{**job, "budget": TimeBudget.from_json(job["budget"])}))
"""


def _descends_from(entry, ancestor):
    """Whether the process of /proc entry `entry` is `ancestor` or one of its descendants."""
    pid = int(entry.name)
    while pid > 1:
        if pid == ancestor:
            return True
        pid = int(stat_fields(Path(f"/proc/{pid}"))[1])
    return False


def test_killing_the_grading_worker_ends_everything_its_student_run_started(batch, tmp_path):
    """kill -9 of a worker grading a looping notebook: its nbgrader zygote, nbgrader, the kernel
    sandbox and every process of the run's user go with it."""
    from autograder.grading.grade import prepare
    from autograder.grading.grade_one import GradeJob

    course = batch.course
    base, template_db, scratch = prepare(course)
    job = GradeJob("deaf", course.assignment_id, str(course.step_dir("submitted", "deaf")), str(base),
                   str(template_db), str(course.source_root), str(scratch), dataset="digits",
                   course_root=str(course.root), budget=TimeBudget(cell=300, judge_case=5))
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the worker's, closed below
    worker = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(asdict(job))], cwd=ROOT,
                              stdout=log, stderr=log)
    uid = sandbox.student_user(worker.pid)[0]

    def run_user(entry):  # in a cgroup of this worker's runs (named after its pid)
        return entry.stat().st_uid == uid and running(entry) and f"/cs231n-{worker.pid}-" in (entry / "cgroup").read_text()

    def zygote(entry):
        argv = (entry / "cmdline").read_bytes().split(b"\0")
        return b"autograder.notebooks.nbgrader_zygote" in argv and str(worker.pid).encode() in argv and running(entry)

    try:
        for _ in range(1800):  # until the kernel sandbox runs (the judge comes first)
            kernels = pids_where(lambda entry: run_user(entry)
                                 and b"kernel_zygote.py" in (entry / "cmdline").read_bytes())
            if len(kernels) >= 2:  # the zygote and the looping kernel forked from it
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.1)
        else:
            pytest.fail("the notebook's kernel never started")
        assert pids_where(zygote)
    finally:
        worker.kill()
        worker.wait()
        log.close()
    for _ in range(100):
        left = pids_where(run_user) + pids_where(zygote)
        if not left:
            break
        time.sleep(0.1)
    assert not left, "processes of the student run outlived its worker"
