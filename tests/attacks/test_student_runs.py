"""Red team, as a student whose code runs in the notebook kernel and in the judge: what it can
read, write, keep, send back or cost beyond test_sandbox_walls.py and the graded batches; in the
product's own sandboxes (product_sandboxes.py) wherever a sandbox is needed.

Each test asserts the safe outcome; where the attack worked on main (3ccff9f) the fix is named.
"""
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from process_tree import stat_fields

from autograder.budget import TimeBudget
from autograder.sandbox import bubblewrap as sandbox
from product_sandboxes import judge_run, kernel_box, kernel_run
from user_slots import slot

ROOT_AND_BWRAP = pytest.mark.skipif(os.geteuid() != 0 or not sandbox.isolation_available(),
                                    reason="per-student users and cgroups need root; the sandbox needs bwrap")
PYTHON = os.path.realpath(sys.executable)
SLOT_HOSTILE, SLOT_HONEST = slot(2), slot(3)  # users of two concurrently graded students
SLOT_WRITER, SLOT_KERNEL = slot(4), slot(5)  # one per test: a test ends every process of its users


def _package(folder):
    """folder holding an empty submitted cs231n package."""
    (folder / "cs231n").mkdir(parents=True)
    (folder / "cs231n" / "__init__.py").write_text("")
    return folder


def _start(code, worker):
    """code running in the judge worker's sandbox and run group (judge_run), as student code does."""
    box, group = worker.box, worker.group
    return sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(code)], box, group=group,
                                   env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)


def _cpu_ticks(uid):
    """user + system clock ticks used so far by the live processes of the host user uid."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                fields = stat_fields(entry)
                ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return ticks


# --------------------------------------------------------------------------------------------
# COST: one student's many busy processes against another student's run
# --------------------------------------------------------------------------------------------
BUSY_SESSIONS = """
    import os
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # both runs on one core
    for _ in range(47):  # 48 busy processes, each in a session of its own
        if os.fork() == 0:
            os.setsid()
            break
    while True:
        pass
"""
BUSY_ONE = """
    import os
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    while True:
        pass
"""


@pytest.mark.slow
@ROOT_AND_BWRAP
def test_many_busy_sessions_do_not_starve_another_students_run(tmp_path):
    """The kernel's autogroups give each session its own CPU weight, and runs had no CPU share of
    their own: 48 busy processes that each call setsid() got 48 weights against the other
    student's one. Measured on main with 60 of them: the honest run's single process got 0.03 of
    a core instead of 0.30 (2 cores, other sessions' load 5-20), enough to push an innocent
    notebook past its 600 s budget. Fix: each run's cgroup also holds the `cpu` controller with
    the same weight for every run (judge/cgroups.py), so the honest run gets its share. Compared
    here, with both runs on one core: the CPU each run's user used over the same seconds (no
    clock in the assertion)."""
    hostile_uid, honest_uid = sandbox.student_user(SLOT_HOSTILE)[0], sandbox.student_user(SLOT_HONEST)[0]
    procs = []
    with contextlib.ExitStack() as runs:
        hostile_run = runs.enter_context(judge_run(_package(tmp_path / "hostile"), SLOT_HOSTILE))
        honest_run = runs.enter_context(judge_run(_package(tmp_path / "honest"), SLOT_HONEST))
        if not (hostile_run.group.cpu_fair and honest_run.group.cpu_fair):
            pytest.skip("no cgroup cpu controller here: runs share the CPU by the kernel's own rules")
        try:
            procs.append(_start(BUSY_SESSIONS, hostile_run))
            procs.append(_start(BUSY_ONE, honest_run))
            time.sleep(1.5)  # every process started and busy
            before = _cpu_ticks(hostile_uid), _cpu_ticks(honest_uid)
            time.sleep(4)
            hostile, honest = (_cpu_ticks(hostile_uid) - before[0], _cpu_ticks(honest_uid) - before[1])
        finally:
            for proc in procs:
                sandbox.kill_tree(proc)
    # fair: about 1 to 1; unfair: about 1 to 48
    assert hostile > 0 and honest >= hostile / 4, (
        f"the honest run's one process got {honest} ticks while the hostile run's 48 got {hostile}")


# --------------------------------------------------------------------------------------------
# SEND BACK through the judge: what its worker computes, and what it holds
# --------------------------------------------------------------------------------------------
JUDGE_HOSTILE = '''

import gc as _gc
import sys as _sys
import numpy as _np

# the laws of dropout were computed by the probe, in this process: answer them, implement nothing
if "probes" in _sys.modules:
    def _fake_dropout(load, inp):
        return {"units_zero_or_x_over_p": _np.asarray(1.0), "kept_fraction": _np.asarray(float(inp["p"])),
                "same_seed_same_mask": _np.asarray(1.0)}
    _sys.modules["probes"].PROBES["dropout_forward"] = _fake_dropout

    # and the summary of a fresh TwoLayerNet: shapes from the inputs, spread and zeros as they
    # should be, with no __init__ at all
    def _fake_init(load, inp):
        D, H, C = int(inp["input_dim"]), int(inp["hidden_dim"]), int(inp["num_classes"])
        out = {"params_have_dtype": _np.asarray(1.0)}
        for name, shape in (("W1", (D, H)), ("b1", (H,)), ("W2", (H, C)), ("b2", (C,))):
            out[f"shape.{name}"] = _np.array(shape, dtype=_np.int64)
            out[f"std_over_scale.{name}" if name[0] == "W" else f"all_zero.{name}"] = _np.asarray(1.0)
        return out
    _sys.modules["probes"].PROBES["two_layer_net_init"] = _fake_init


def _everywhere():
    """Every array in the callers' frames (and in the dicts there) and in the collector's view."""
    frame = _sys._getframe(2)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            yield value
            if isinstance(value, dict):
                yield from list(value.values())
        frame = frame.f_back
    for value in _gc.get_objects():
        yield value
        if isinstance(value, dict):
            yield from list(value.values())


def relu_forward(x):
    """Returns the expected answer if it is anywhere in this process (the right answer is
    computed only to recognise it), else zeros."""
    target = _np.maximum(x, 0)
    for value in _everywhere():
        if type(value) is _np.ndarray and value is not target and value.shape == x.shape \\
                and _np.array_equal(value, target):
            return value.copy(), x
    return _np.zeros_like(x), x
'''


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.isolation_available(), reason="the judge needs bwrap")
def test_the_judged_process_can_neither_decide_a_case_nor_find_its_answer(tmp_path):
    """The judge's worker is the student's process: a probe that judged there decides nothing.
    On main the dropout_forward probe computed the laws of dropout (units 0 or x/p, fraction
    kept, same seed same mask) in the worker, so a starter that replaced the probe at import
    earned dropout_forward (both cases, and so the notebook cells naming it) with no dropout at
    all; likewise the init case of TwoLayerNet (and of the other two nets), whose summary
    (shapes, spread over weight_scale, zero biases) the worker made. Fix: the probes return what
    the student's code made, and the grader judges it in its own process: dropout by its laws
    (Case.verdict, hidden/cases.py dropout_laws), a fresh model's parameters by their summary
    (Case.summary, init_summary), compared with the reference's. And the expected outputs are never
    in the worker: a relu_forward that searches its callers' frames and every object the
    collector knows for the right answer finds nothing."""
    from autograder.config import PACKAGE
    from autograder.judge import judge_package
    from autograder.release.stubs import strip_package

    strip_package(PACKAGE, tmp_path / "cs231n")
    with open(tmp_path / "cs231n" / "layers.py", "a") as layers:
        layers.write(JUDGE_HOSTILE)
    results = judge_package(tmp_path, tasks=["dropout_forward", "relu_forward", "TwoLayerNet"])
    assert {r.task for r in results} == {"dropout_forward", "relu_forward", "TwoLayerNet"}
    assert not [r for r in results if r.passed], results
    words = {"dropout_forward": "not two outputs", "relu_forward": "relative error", "TwoLayerNet": ""}
    for r in results:
        assert words[r.task] in r.message, r
    init, = [r for r in results if r.case == "init"]
    assert "do not match the expected" in init.message, init


# --------------------------------------------------------------------------------------------
# WRITE: where a sandbox can write, and what the next student of the same worker finds
# --------------------------------------------------------------------------------------------
MARKER = "cs231n-redteam-marker"
PLANT = f"""
    import os
    planted = []
    for folder, dirs, files in os.walk("/"):
        if folder in ("/proc", "/sys", "/dev/pts"):
            dirs[:] = []
            continue
        for name in ("{MARKER}", "{MARKER}.cpython-311.pyc"):
            try:
                fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError:
                continue
            os.write(fd, b"planted")
            os.close(fd)
            planted.append(folder)
    print("planted", sorted(set(planted)))
"""
FIND = f"""
    import os
    found = []
    for folder, dirs, files in os.walk("/"):
        if folder in ("/proc", "/sys"):
            dirs[:] = []
            continue
        found += [os.path.join(folder, f) for f in files if f.startswith("{MARKER}")]
    print("found", found)
"""


def _run_in(box, code):
    proc = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(code)], box,
                                   env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        sandbox.kill_tree(proc)
    assert proc.returncode == 0, out
    return out


@contextlib.contextmanager
def _view(tmp_path, view):
    """(the product's sandbox of view for one student of SLOT_WRITER, the folder it may write
    besides /tmp and /dev/shm): the judge's (judge_run) or a kernel's (kernel_run); a fresh one
    for each student."""
    tmp_path.mkdir()
    if view == "judge":
        with judge_run(_package(tmp_path / "student"), SLOT_WRITER) as worker:
            yield worker.box, None
    else:
        with kernel_run(tmp_path, SLOT_WRITER) as (spec, _):
            yield kernel_box(spec)[0], spec.shared


@pytest.mark.slow
@ROOT_AND_BWRAP
@pytest.mark.parametrize("view", ["judge", "kernel"])
def test_a_sandbox_writes_only_into_its_sized_tmpfs_and_leaves_nothing_for_the_next_student(tmp_path, view):
    """Student code tries to create a file (and a .pyc) in every folder it can see: the shared
    site-packages and standard library (a poisoned .pyc there would be imported by every later
    run), the interpreter's folders, the root, /dev. On main the sandbox's root, its /dev and the
    tmpfs that hides the installation's site-packages were bwrap's tmpfs of no set size, writable
    by the run's user: without a cgroup (the rlimits mode), nothing bounded what a run wrote
    there. Fix: they are remounted read-only (judge/sandbox.py); the run writes only into /tmp and
    /dev/shm (sized) and the folders bound to it read-write. The next student graded by the same
    worker (same user) finds none of it."""
    with _view(tmp_path / "first", view) as (box, rw):
        planted = eval(_run_in(box, PLANT).split("planted", 1)[1])  # noqa: S307 (a list of str)
    allowed = ("/tmp", "/dev/shm", *([rw] if rw else []))
    assert planted and all(any(p == a or p.startswith(a + "/") for a in allowed) for p in planted), planted
    with _view(tmp_path / "second", view) as (next_box, _):
        assert "found []" in _run_in(next_box, FIND)
    assert not list(Path(sandbox.site_packages()).rglob(f"{MARKER}*"))


# --------------------------------------------------------------------------------------------
# READ: a grading machine whose venv holds a copy of the course's package
# --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not sandbox.isolation_available(), reason="the sandbox needs bwrap")
def test_no_sandbox_binds_a_site_packages_holding_the_course_package(tmp_path, monkeypatch):
    """Every sandbox binds the venv's site-packages whole. With the project installed editable
    (every documented set-up) that holds only a finder pointing at the instructor's tree, which
    is not bound; a hurried `pip install .` puts a copy of the reference cs231n (solutions and
    compiled layers) there instead, and on main the sandbox bound it: student code read
    `site-packages/cs231n/layers.py`. Fix: the sandbox refuses such a site-packages and says how
    to reinstall (judge/sandbox.py CoursePackageInstalled). Here the installation's platlib is
    made a folder holding a copy of the reference's layers.py, as a non-editable install leaves."""
    import shutil
    import sysconfig

    from autograder.config import PACKAGE

    installed = tmp_path / "site-packages"
    (installed / "cs231n").mkdir(parents=True)
    shutil.copyfile(Path(PACKAGE) / "layers.py", installed / "cs231n" / "layers.py")
    real = sysconfig.get_paths

    def paths(*args, **kwargs):
        return {**real(*args, **kwargs), "platlib": str(installed)}

    monkeypatch.setattr(sysconfig, "get_paths", paths)
    box = sandbox.Sandbox(cwd="/tmp", uid=os.getuid(), gid=os.getgid())
    with pytest.raises(sandbox.CoursePackageInstalled, match="pip install -e"):
        sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", f"print(open({str(installed / 'cs231n' / 'layers.py')!r}).read())"],
                                box, stdout=subprocess.PIPE)


# --------------------------------------------------------------------------------------------
# READ: descriptors a kernel inherits or can reach through /proc
# --------------------------------------------------------------------------------------------
FDS_REPORT = """import json, os
seen = {}
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        where = f"/proc/{pid}/fd/{fd}"
        try:
            target = os.readlink(where)
        except OSError:
            continue
        try:
            readable = len(os.read(os.open(where, os.O_RDONLY | os.O_NONBLOCK), 64)) >= 0
        except OSError:
            readable = False
        seen[f"{pid}/{fd}"] = [target, readable]
with open("fds.json.part", "w") as f:
    json.dump(seen, f)
os.rename("fds.json.part", "fds.json")
"""


@pytest.mark.slow
@ROOT_AND_BWRAP
def test_a_kernel_holds_and_reaches_no_descriptor_of_the_graders_files(tmp_path):
    """nbgrader's process holds the gradebook open and starts the run's kernel zygote; the
    launcher hands the zygote each kernel's log. A kernel lists every descriptor of every process
    it can see (itself, the zygote, the sandbox's init) and re-opens each through /proc for
    reading: none names the grader's secret file (held open, inheritable, by the process that
    started the run), and the only host files it sees outside its view are the run's logs,
    which it cannot read. On main the zygote's log was made 0644, and a kernel read it through
    /proc/1/fd/2 (bwrap's init holds it; only its own run's zygote writes there, so nothing was
    learnt); it is 0600 now, as the kernels' logs are (run.enter_run)."""
    import json

    from product_sandboxes import real_zygote

    tmp_path.chmod(0o755)
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("SECRET-GRADEBOOK")
    gradebook.chmod(0o600)
    held = os.open(gradebook, os.O_RDWR)
    os.set_inheritable(held, True)
    try:
        with real_zygote(tmp_path, SLOT_KERNEL) as (start, _, logs):
            conn, pidfd, work = start(FDS_REPORT)
            deadline = time.monotonic() + 120
            while not (work / "fds.json").exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            conn.close()
            os.close(pidfd)
            seen = json.loads((work / "fds.json").read_text())
    finally:
        os.close(held)
    targets = {target for target, _ in seen.values()}
    assert any(t.startswith(str(work)) or t.startswith("socket:") for t in targets), seen  # it looked
    assert not [t for t in targets if "gradebook" in t], seen
    outside = {k: v for k, v in seen.items()
               if v[0].startswith(str(tmp_path)) and not v[0].startswith(str(tmp_path / "shared"))}
    assert all(target.startswith(str(logs)) and not readable for target, readable in outside.values()), outside


# --------------------------------------------------------------------------------------------
# SEND BACK through nbgrader's log: "not graded" instead of a score
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not sandbox.isolation_available(), reason="grading needs bwrap")
def test_words_in_nbgraders_log_do_not_make_a_student_not_graded(tmp_path, monkeypatch):
    """Text of the student's choosing reaches nbgrader's log: each file it copies from the
    submission by name ("Copying .../submitted/<student>/a2/<name> -> ..."), and a test cell's
    result that is not a number, verbatim ("Cell output is <text>, which cannot be converted to a
    float", up to the 2 MB a cell may print). The grader keeps the log's last 4000 bytes. On main the grader read its own time limit back from that
    text: a tail that began with "nbgrader autograde ran longer than" made the student "not
    graded: the grader's own time limit ran out", which is never a score and is graded again by
    every later run; a student who lined a file name up with the tail's start turned a low score
    into that. Fix: the time limit travels as a value (grade_one.AutogradeOutcome.over_limit). Here
    nbgrader's run (the only part faked) leaves such a tail and exits 0."""
    from autograder.grading import grade_one
    from autograder.notebooks import nbgrader_zygote
    from autograder.intake.collect import collect
    from autograder.config import Course
    from autograder.grading.grade import pending_jobs, prepare
    from autograder.release.build import build_release
    from autograder.results.store import GradeResult
    from course_fixtures import make_small_class, make_toy_source

    root = tmp_path / "course"
    course = Course(root=root, db_url=f"sqlite:///{root / 'gradebook.db'}",
                    source_root=make_toy_source(tmp_path / "src"))
    make_small_class(course.source, build_release(course), tmp_path / "subs", reference=("ref1",), starter=())
    assert not [c.error for c in collect(tmp_path / "subs", course) if c.error]
    job, = pending_jobs(course, ["ref1"], False, prepare(course), budget=TimeBudget(judge_case=5, cell=60))

    def nbgrader_with_a_forged_tail(run, cwd, log_path, env, *, budget, notebooks):
        tail = "nbgrader autograde ran longer than 1 s: "
        Path(log_path).write_text("Copying ... -> ...\n" * 300 + tail + "y" * (4000 - len(tail)))
        return 0, False

    monkeypatch.setattr(nbgrader_zygote, "run_nbgrader", nbgrader_with_a_forged_tail)
    outcome = grade_one.grade_submission(job)
    assert isinstance(outcome, GradeResult), outcome
    assert outcome.nbgrader_ok and all(f.passed for f in outcome.functions), outcome
