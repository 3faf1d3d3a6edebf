"""Findings 6, 7 and 9 of issue 12: no grade lost or recorded wrong.

- one run per course folder: a second `grade` refuses at once, naming the holder; a dead
  holder's record does not block;
- a grader-side failure (the disk full, a database error) is stored as "not graded: why",
  never as a score, and the next run grades the student without --force;
- kill -9 of the coordinator takes its workers, zygotes and kernels with it, and the next run
  removes the dead run's scratch and grades everybody exactly once.
"""
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autograder.collect import collect
from autograder.config import ROOT, Course
from autograder.export import export
from autograder.grade import grade_all
from autograder.lock import CourseBusy, course_lock, lock_path
from autograder.release import build_release
from autograder.results import merged_digests, not_graded, scores, stored_results
from course_fixtures import make_small_class, make_toy_source
from services import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading_failures")]
KW = {"progress": False, "judge_timeout": 5, "cell_timeout": 60}


def _course(tmp, **class_kw):
    src = make_toy_source(tmp / "src")
    root = tmp / "course"
    course = Course(root=root, db_url=f"sqlite:///{root / 'gradebook.db'}", source_root=src)
    release = build_release(course)
    make_small_class(course.source, release, tmp / "subs", **class_kw)
    assert not [c.error for c in collect(tmp / "subs", course) if c.error]
    return course


def _cli(course, *args, env_extra=None, **popen):
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root), **(env_extra or {})}
    env.pop("CS231N_DB_URL", None)
    argv = [sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade", *args]
    return subprocess.Popen(argv, cwd=ROOT, env=env, **popen)


def _merged(course):
    try:
        with sqlite3.connect(course.root / "gradebook.db") as db:
            return {row[0]: row[1] for row in db.execute("SELECT student_id, graded_at FROM cs231n_results")}
    except sqlite3.OperationalError:  # no table yet
        return {}


def _is_right(course, results):
    """Reference copies earn every function point and every automatic notebook point a task
    confirms (the toy's test_double names none, so it keeps nothing); starter copies no
    function point."""
    for sid, result in results.items():
        if sid.startswith("ref"):
            assert result.functions and all(f["passed"] for f in result.functions), sid
            assert all(g["auto_score"] == (0 if g["name"] == "test_double" else g["max_score"])
                       for nb in result.notebooks for g in nb["grades"] if not g["needs_manual_grade"]), sid
        else:
            assert not any(f["passed"] for f in result.functions), sid


# --------------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------------
HOLD = "import sys, time; from autograder.lock import course_lock\nwith course_lock(sys.argv[1]):\n" \
       "    print('held', flush=True); time.sleep(600)"


def test_a_held_lock_refuses_naming_its_holder_and_a_dead_holder_does_not_block(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CourseBusy, match=f"process {holder.pid} on .*, started 20"):
            with course_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert str(holder.pid) in lock_path(tmp_path).read_text()  # its record is still there
    with course_lock(tmp_path) as me:  # but the kernel released its flock
        assert me.pid == os.getpid()
        with course_lock(tmp_path) as again:  # nested in one process: the same lock
            assert again == me


HOLD_WITH_A_WORKER = "import os, sys, time; from autograder.lock import course_lock\n" \
    "with course_lock(sys.argv[1]):\n    worker = os.fork()\n    if worker == 0:\n        time.sleep(600)\n" \
    "    print(worker, flush=True); time.sleep(600)"


def test_workers_of_a_dead_holder_keep_the_lock_until_they_die(tmp_path):
    """A run killed alone leaves its forked workers holding the lock: the next run says so;
    once they are gone, the lock is free."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WITH_A_WORKER, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    worker = int(holder.stdout.readline())
    try:
        holder.kill()
        holder.wait()
        with pytest.raises(CourseBusy, match=f"process {holder.pid} .* is gone, but processes it started"):
            with course_lock(tmp_path):
                pass
    finally:
        os.kill(worker, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2],
               30, "the worker did not die")
    with course_lock(tmp_path) as me:
        assert me.pid == os.getpid()


def test_a_second_grade_run_refuses_and_the_first_grades_right(tmp_path):
    """Finding 6: two `grade` runs on one course folder recorded 68/68 maxima and crashed."""
    course = _course(tmp_path)
    first = _cli(course, "--workers", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: f'"pid": {first.pid}' in (lock_path(course.root).read_text()
                                                      if lock_path(course.root).exists() else ""), 120,
                   "the first run did not take the lock")
        second = _cli(course, "--workers", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 3, (out, err)
        assert f"process {first.pid} on" in err and "started" in err
        out, err = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    results = stored_results(course)
    assert set(results) == {"ref1", "ref2", "st1", "st2"}
    _is_right(course, results)
    ref_score, ref_max, _ = scores(results["ref1"])
    st_score, st_max, _ = scores(results["st1"])
    assert ref_max == st_max > 0 and ref_score > st_score  # no maximum dropped, no score doubled


# --------------------------------------------------------------------------------------------
# Grader-side failures are never grades
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_scratch(tmp_path):
    """The course's scratch folder on a small tmpfs; yields (course, fill), fill() filling it
    up and returning the file to delete to free it."""
    course = _course(tmp_path, reference=("ref1",), starter=("st1",))
    scratch = course.root / ".grading" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(scratch)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")

    def fill():
        filler = scratch / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 2**20)
            except OSError:
                pass
        return filler

    try:
        yield course, fill
    finally:
        subprocess.run(["umount", "-l", str(scratch)], check=True)


def test_a_full_disk_is_not_a_grade_and_the_next_run_grades_them(small_scratch):
    """Finding 7: a full disk recorded a student as 68/168, and the next run kept that grade."""
    from nbgrader.api import Gradebook, MissingEntry

    course, fill = small_scratch
    first, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and set(first) == {"ref1", "st1"}
    resubmitted = course.step_dir("submitted", "st1") / "Toy.ipynb"  # same notebook, new bytes
    resubmitted.write_text(resubmitted.read_text() + "\n")

    filler = fill()
    results, failures = grade_all(course, workers=1, **KW)
    assert results == {}
    assert list(failures) == ["st1"] and failures["st1"].startswith("disk full")  # ref1: already graded
    assert set(merged_digests(course)) == {"ref1"}  # st1's old grade is gone, and no new score stored
    with Gradebook(course.db_url) as gb, pytest.raises(MissingEntry):
        gb.find_submission(course.assignment_id, "st1")  # nbgrader's own copy of it too
    assert {sid: f.reason for sid, f in not_graded(course).items()} == failures
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(export(course, course.root / "out").read_text()))}
    assert (rows["st1"]["status"], rows["st1"]["score"]) == ("not graded", "")
    assert "not graded: disk full" in rows["st1"]["problems"]
    assert rows["ref1"]["status"] == "graded" and float(rows["ref1"]["score"]) > 0

    filler.unlink()
    results, failures = grade_all(course, workers=1, **KW)  # no --force
    assert failures == {} and set(results) == {"st1"}
    _is_right(course, results)
    assert results["st1"].notebooks == first["st1"].notebooks
    assert not_graded(course) == {} and set(merged_digests(course)) == {"ref1", "st1"}
    assert list((course.root / ".grading" / "scratch").glob("grade-*")) == []


def test_a_database_error_at_merge_time_is_not_recorded_and_is_retried(tmp_path):
    course = _course(tmp_path, reference=("ref1", "ref2"), starter=())
    blocker = []

    def lock_the_gradebook_after_the_first(outcome):
        if not blocker:  # another program holds the SQLite gradebook: every write now fails
            db = sqlite3.connect(course.root / "gradebook.db", timeout=0, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            blocker.append(db)

    try:
        results, failures = grade_all(course, workers=1, on_result=lock_the_gradebook_after_the_first, **KW)
    finally:
        for db in blocker:
            db.rollback()
            db.close()
    assert len(results) == 1 and len(failures) == 1
    (failed, why), = failures.items()
    assert why.startswith("database error") and "could not be stored" in why
    assert set(merged_digests(course)) == set(results) and not_graded(course) == {}

    again, failures = grade_all(course, workers=1, **KW)  # no --force
    assert failures == {} and set(again) == {failed}
    _is_right(course, {**results, **again})


# --------------------------------------------------------------------------------------------
# kill -9 of the coordinator
# --------------------------------------------------------------------------------------------
def _descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _start_time(pid):
    """The start time of a live process pid (None when it is gone or a zombie: dead, not reaped)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _tied_to_run(marker, course_root):
    """pids whose environment carries the run's marker, or whose working folder or command line
    names its course folder."""
    tied = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                tied.add(int(entry.name))
                continue
            if str(course_root) in os.readlink(entry / "cwd") or \
                    str(course_root).encode() in (entry / "cmdline").read_bytes():
                tied.add(int(entry.name))
        except OSError:
            continue
    return tied


def test_kill_9_of_the_coordinator_leaves_nothing_and_the_next_run_grades_everybody_once(tmp_path):
    course = _course(tmp_path, reference=("ref1", "ref2", "ref3"), starter=("st1", "st2", "st3"))
    marker = f"CS231N_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    run = _cli(course, "--workers", "2", env_extra={key: value}, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: _merged(course) or run.poll() is not None, 600, "no student was merged")
        tree = {pid: _start_time(pid) for pid in _descendants(run.pid)}
        os.kill(run.pid, signal.SIGKILL)  # the coordinator alone, mid-run
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert len(tree) >= 3, f"the kill came when no worker ran: {tree}"  # two workers and a zygote at least

    def leftovers():
        alive = {pid for pid, started in tree.items() if started is not None and _start_time(pid) == started}
        return alive | _tied_to_run(marker, course.root)

    killed = time.monotonic()
    deadline = killed + 5  # "within a second or two", with room for a loaded machine
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"processes of the run left {time.monotonic() - killed:.1f} s after the kill: {sorted(leftovers())}")
    assert leftovers() == set(), {pid: (Path(f"/proc/{pid}/cmdline").read_bytes()[:200]) for pid in leftovers()}

    before = _merged(course)
    assert 1 <= len(before) < 6
    results, failures = grade_all(course, workers=2, **KW)
    after = _merged(course)
    assert failures == {}
    assert set(results).isdisjoint(before), "a student merged before the kill was graded again"
    assert set(results) | set(before) == set(after) == {"ref1", "ref2", "ref3", "st1", "st2", "st3"}
    assert all(after[sid] == stamp for sid, stamp in before.items())
    _is_right(course, stored_results(course))
    assert list((course.root / ".grading" / "scratch").glob("grade-*")) == []
