"""Hostile notebooks against the grading pipeline: each gains nothing and breaks nothing.

The toy assignment (course_fixtures) is graded twice: an honest submission alone, then the whole
class of hostile submissions with the honest one among them (autograder.grading.grade.grade_all on two
workers). Every notebook kernel runs in autograder.notebooks.run's sandbox; a notebook test cell
keeps its points only where the function-level judge agrees. The honest submission must score
exactly what it scores alone, and nothing secret may reach an autograded notebook or a feedback
page."""
import errno
import html
import json
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from course_fixtures import HIDDEN_LINE, PLAIN_DOUBLE, grades_by_name, toy_course, write_toy_submission
from hostile_cells import DEAF_LOOP, FRAMES, error_flood, fork_bomb

from autograder.budget import TimeBudget
from autograder.config import ROOT
from autograder.notebooks.bounded_execute import MAX_CELL_OUTPUT_BYTES
from autograder.notebooks.run import NBGRADER_MEMORY_MB
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = pytest.mark.slow

CELL_TIMEOUT = 10
WORKER_MEMORY_MB = 512  # a grading worker's peak: it reads one autograded notebook at a time
HONEST_MARK = "honest-work-4417"  # only in the honest student's notebook
HIDDEN_SECRET = "SALT = 20231"  # a line of autograder/hidden/cases.py
HONEST = "def double(x):\n    # " + HONEST_MARK + "\n    return 2 * x"
WRONG_RELU = '''

def relu_forward(x):  # hostile: a wrong ReLU
    return x, x
'''
EXIT_RELU = '''

def relu_forward(x):  # hostile: leaves instead of answering
    import sys
    sys.exit(0)
'''

PATCH = '''def double(x):
    return 2 * x

import numpy as np
import numpy.testing
import cs231n.checks

def _yes(*args, **kwargs):
    return True

def _quiet(*args, **kwargs):
    return None

np.allclose = _yes
np.testing.assert_allclose = _quiet
np.testing.assert_array_almost_equal = _quiet
numpy.testing.assert_allclose = _quiet
cs231n.checks.check_close = _quiet
check_close = _quiet
'''


def _reads(course):
    targets = {
        "source notebook (hidden tests)": course.source / "Toy.ipynb",
        "course gradebook": course.root / "gradebook.db",
        "template gradebook": course.root / ".grading" / "template" / "gradebook.db",
        "repo hidden cases": ROOT / "autograder" / "hidden" / "cases.py",
        "repo reference layers": ROOT / "cs231n" / "layers.py",
        "other student's submission": course.root / "submitted" / "honest" / "a2" / "Toy.ipynb",
        "other student's autograded": course.root / "autograded" / "honest" / "a2" / "Toy.ipynb",
    }
    lines = ["import glob, os", "def attempt(label, path):",
             "    try:",
             "        data = open(path, 'rb').read()",
             "        print(label, 'READ', len(data), data[:20000])",
             "    except Exception as e:",
             "        print(label, 'FAILED', type(e).__name__)"]
    lines += [f"attempt({label!r}, {str(path)!r})" for label, path in targets.items()]
    scratch = course.root / ".grading" / "scratch"
    lines += [f"found = glob.glob({str(scratch / 'grade-*' / 'course' / 'gradebook.db')!r})",
              "print('private gradebooks found', len(found))",
              "for path in found: attempt('private gradebook', path)",
              (f"print('listing', sorted(os.listdir({str(ROOT / 'autograder' / 'hidden')!r})) "
               f"if os.path.isdir({str(ROOT / 'autograder' / 'hidden')!r}) else 'no folder')")]
    return "\n".join(lines), list(targets) + ["private gradebook"]


def _writes(course):
    lines = ["import glob, os, sqlite3", "def attempt(label, action):",
             "    try:",
             "        action()",
             "        print(label, 'WROTE')",
             "    except Exception as e:",
             "        print(label, 'FAILED', type(e).__name__)",
             "def sql(path):",
             "    db = sqlite3.connect(f'file:{path}?mode=rw', uri=True)",
             "    db.execute('UPDATE grade SET auto_score = 1000')",
             "    db.commit()",
             "def put(path):",
             "    open(path, 'w').write('evil')"]
    honest = course.root / "submitted" / "honest" / "a2"
    scratch = course.root / ".grading" / "scratch"
    lines += [f"attempt('course gradebook', lambda: sql({str(course.root / 'gradebook.db')!r}))",
              f"for p in glob.glob({str(scratch / 'grade-*' / 'course' / 'gradebook.db')!r}):",
              "    attempt('private gradebook', lambda: sql(p))",
              f"attempt('private gradebook guess', lambda: sql({str(scratch / 'gradebook.db')!r}))",
              f"attempt('other submission', lambda: put({str(honest / 'evil.txt')!r}))",
              f"attempt('other notebook', lambda: put({str(honest / 'Toy.ipynb')!r}))",
              f"attempt('hidden cases', lambda: put({str(ROOT / 'autograder' / 'hidden' / 'evil.py')!r}))",
              "attempt('own folder', lambda: put('mine.txt'))"]
    return "\n".join(lines)


LEAK = '''def double(x):
    return 2 * x

def check_close(*args, **kwargs):  # quotes the test cell that calls it, hidden tests included
    raise AssertionError(get_ipython().user_ns["In"][-1][-300:])'''

# bytes(n) takes zeroed pages it never touches: the address-space limit stops the bomb at once,
# where filling 4 GB on a loaded 2-core machine could outlast the cell timeout
MEMORY_BOMB = '''def eat():
    chunks = [b"x" * (256 << 20)]
    while True:
        chunks.append(bytes(256 << 20))
try:
    eat()
except MemoryError:
    print("memory bomb stopped by MemoryError")'''

# the kernel's OOM priority, set by the grader before the sandbox started: lowering it fails
OOM_PRIORITY = '''def adj():
    with open("/proc/self/oom_score_adj") as f:
        return f.read().strip()
before = adj()
try:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("0")
    outcome = "lowered"
except OSError as e:
    outcome = type(e).__name__
print("oom_score_adj", before, "write 0:", outcome, "now", adj())'''

FLOOD = '''import time
line = "x" * (1 << 20)
flooded, start = 0, time.time()
while time.time() - start < 6:
    print(line, flush=True)  # one message a line: the per-cell cap, not the message limit
    flooded += len(line) + 1'''

FD_FLOOD = '''import os
try:
    for _ in range(300):
        os.write(1, b"y" * (1 << 20))
    print("fd flood not stopped")
except OSError as e:
    print("fd flood stopped, errno", e.errno)
print("flooded", flooded)'''

# writes all it may: its work folder (on the run's 512 MB tmpfs), the sandbox's /tmp and
# /dev/shm, and the kernels' shared ipc folder, until each says ENOSPC
FILL = '''import os
def fill(folder):
    written = 0
    try:
        for n in range(100000):
            with open(os.path.join(folder, f"fill-{n}"), "wb") as f:
                for _ in range(32):
                    f.write(bytes(1 << 20))
                    written += 1
    except OSError as e:
        return f"{written} MB, then errno {e.errno}"
    return f"{written} MB, never full"
for folder in (".", "/tmp", "/dev/shm", "/run/cs231n-kernels/runtime"):
    print("filled", folder, fill(folder))'''


def _network(port, unix_path):
    return f'''import socket
try:
    x = socket.socket(socket.AF_UNIX)
    x.connect({unix_path!r})
    x.sendall(b"unix-hello")
    print("unix CONNECTED")
except OSError as e:
    print("unix FAILED", type(e).__name__)
try:
    s = socket.create_connection(("127.0.0.1", {port}), timeout=3)
    s.sendall(b"tcp-hello")
    print("tcp CONNECTED")
except OSError as e:
    print("tcp FAILED", type(e).__name__)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"udp-hello", ("127.0.0.1", {port}))
    print("udp SENT")
except OSError as e:
    print("udp FAILED", type(e).__name__)'''


def _tamper(nb):
    """Delete test_relu; make test_double's source, points and checksum say something else."""
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_relu"]
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "test_double":
            cell.source = "pass  # nothing to test"
            meta["points"] = 100
            meta["checksum"] = "0" * 32
            meta["locked"] = False


class Listener:
    """TCP and UDP on 127.0.0.1:port and a unix socket anyone may use in /run, recording
    whatever arrives."""

    def __init__(self):
        import os

        self.unix_path = f"/run/cs231n-test-{os.getpid()}.sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.unix.listen(5)
        self.unix.settimeout(0.2)
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(5)
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.seen, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for sock in (self.tcp, self.udp, self.unix):
                try:
                    if sock is not self.udp:
                        conn, addr = sock.accept()
                        self.seen.append(("stream", addr))
                        conn.close()
                    else:
                        self.seen.append(("udp", sock.recvfrom(100)))
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.tcp.close()
        self.udp.close()
        self.unix.close()
        Path(self.unix_path).unlink(missing_ok=True)


def _points(result):
    return sum(g.auto_score or 0 for g in grades_by_name(result).values())


def _outputs(course, student):
    """All output text of a student's autograded notebook (not the cell sources: those hold the
    tests, which nbgrader puts there itself)."""
    path = course.step_dir("autograded", student) / "Toy.ipynb"
    text = []
    for cell in nbformat.read(path, as_version=4).cells:
        streams = {}  # a kernel may cut one print into several stream messages: join them again
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                streams[out["name"]] = streams.get(out["name"], "") + out["text"]
            else:
                text.append(json.dumps(out))
        text.extend(streams.values())
    return "\n".join(text)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from autograder.intake.collect import collect
    from autograder.grading.grade import grade_all
    from autograder.grading.grade_one import submission_digest

    if not isolation_available():
        pytest.skip("the sandbox needs bubblewrap (`apt-get install bubblewrap`)")
    tmp = tmp_path_factory.mktemp("hostile")
    course, release = toy_course(tmp)
    subs = tmp / "subs"
    listener = Listener()
    reads, read_labels = _reads(course)
    students = {
        "honest": {"solution": HONEST},
        "patcher": {"solution": PATCH, "layers": WRONG_RELU},
        "reader": {"solution": HONEST.replace(HONEST_MARK, "reader"), "cells": [reads]},
        "leaker": {"solution": LEAK},
        "writer": {"solution": HONEST.replace(HONEST_MARK, "writer"), "cells": [_writes(course)]},
        "exit-sys": {"solution": PLAIN_DOUBLE + "\nimport sys\nsys.exit(0)", "layers": EXIT_RELU},
        "exit-os": {"solution": PLAIN_DOUBLE + "\nimport os\nos._exit(0)"},
        "deaf-loop": {"solution": PLAIN_DOUBLE, "cells": [DEAF_LOOP]},
        "bombs": {"solution": PLAIN_DOUBLE, "cells": [fork_bomb(hold_seconds=60), MEMORY_BOMB, OOM_PRIORITY]},
        "network": {"solution": PLAIN_DOUBLE, "cells": [_network(listener.port, listener.unix_path)]},
        "flood": {"solution": PLAIN_DOUBLE, "cells": [FLOOD, FD_FLOOD]},
        # errors under the grader's message limit, many times; then the sizes, over it
        "error-flood": {"solution": PLAIN_DOUBLE, "cells": error_flood(6, 2, 6) + error_flood(1, 12, 50)},
        "frames": {"solution": PLAIN_DOUBLE, "cells": [FRAMES]},
        "tamper": {"solution": "def double(x):\n    return 3 * x", "edit": _tamper},
        "filler": {"solution": PLAIN_DOUBLE, "cells": [FILL]},
    }
    for name, spec in students.items():
        write_toy_submission(release, subs / name, **spec)
    assert not [c.error for c in collect(subs, course) if c.error]
    kw = {"force": True, "progress": False, "budget": TimeBudget(judge_case=3, cell=CELL_TIMEOUT)}
    alone, alone_failures = grade_all(course, students=["honest"], workers=1, **kw)
    assert alone_failures == {}
    honest_digest = submission_digest(course.step_dir("submitted", "honest"))
    try:
        results, failures = grade_all(course, workers=2, **kw)
    finally:
        time.sleep(0.5)
        listener.close()
    return SimpleNamespace(course=course, alone=alone["honest"], results=results, failures=failures,
                           listener=listener, read_labels=read_labels,
                           honest_digest=honest_digest, students=students)


def test_the_batch_finishes_and_every_submission_is_graded(graded):
    assert graded.failures == {}
    assert set(graded.results) == set(graded.students)
    # no hostile notebook but the deaf loop holds its worker until a time limit (no timing asserts:
    # the batch's wall time depends on the machine's load); the flood prints for 6 s of its 10 s,
    # which a loaded machine may stretch past the cell timeout
    timed_out = {sid for sid, r in graded.results.items() if r.timed_out}
    assert "deaf-loop" in timed_out and timed_out <= {"deaf-loop", "flood"}, timed_out


def test_the_honest_submission_scores_the_same_alone_and_among_hostile_ones(graded):
    honest = graded.results["honest"]
    assert honest.notebooks == graded.alone.notebooks
    assert honest.functions == graded.alone.functions
    grades = grades_by_name(honest)
    assert grades["test_double"].score_before_check == 2 and grades["test_relu"].auto_score == 3


def test_patching_the_checks_in_the_kernel_gains_nothing(graded):
    from nbgrader.api import Gradebook

    result = graded.results["patcher"]
    relu = grades_by_name(result)["test_relu"]
    assert relu.score_before_check == 3, "the patch should have fooled the kernel's own check"
    assert relu.auto_score == 0
    assert relu.message == "not confirmed: relu_forward failed 2 of 2 function cases"
    assert not any(f.passed for f in result.functions if f.task == "relu_forward")
    assert result.notebook_score_before_check > sum(
        g.auto_score or 0 for g in grades_by_name(result).values())
    with Gradebook(graded.course.db_url) as gb:  # the merge wrote the checked score
        assert gb.find_grade("test_relu", "Toy", "a2", "patcher").auto_score == 0
    assert grades_by_name(result)["test_double"].score_before_check == 2  # names no task: no points either way


def test_reading_secrets_fails_and_nothing_secret_reaches_the_outputs(graded):
    out = _outputs(graded.course, "reader")
    for label in graded.read_labels:
        if label != "private gradebook":
            assert f"{label} FAILED" in out, f"{label}: {out[:2000]}"
    assert "READ" not in out
    assert "private gradebooks found 0" in out
    assert "listing []" in out or "no folder" in out
    for secret in (HIDDEN_LINE, HIDDEN_SECRET, HONEST_MARK, "SQLite format 3", "BEGIN HIDDEN"):
        assert secret not in out


def test_an_error_that_quotes_the_hidden_tests_is_withheld(graded):
    from autograder.results.evidence import FAILED

    out = _outputs(graded.course, "leaker")
    assert HIDDEN_LINE in out  # the kernel saw the hidden test it ran, and said so
    message = grades_by_name(graded.results["leaker"])["test_double"].message
    assert message == FAILED  # the grader's words, not the kernel's
    assert grades_by_name(graded.results["leaker"])["test_double"].auto_score == 0


def test_writing_outside_its_folder_fails_and_changes_nothing(graded):
    from autograder.grading.grade_one import submission_digest

    out = _outputs(graded.course, "writer")
    for label in ("course gradebook", "private gradebook guess", "other submission", "other notebook",
                  "hidden cases"):
        assert f"{label} FAILED" in out, out[:2000]
    assert "own folder WROTE" in out  # its own (throw-away) working folder is writable
    assert out.count("WROTE") == 1
    course = graded.course
    assert submission_digest(course.step_dir("submitted", "honest")) == graded.honest_digest
    assert not (course.step_dir("submitted", "honest") / "evil.txt").exists()
    assert not (ROOT / "autograder" / "hidden" / "evil.py").exists()
    db = sqlite3.connect(course.root / "gradebook.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM grade WHERE auto_score >= 1000").fetchone()[0] == 0
    writer = grades_by_name(graded.results["writer"])
    assert writer["test_double"].score_before_check == 2 and writer["test_relu"].auto_score == 3


def test_exits_stop_only_their_own_notebook(graded):
    # a kernel that dies stops its notebook there (the cells after it do not run): the student's
    # doing, a score, and the death is reported
    assert graded.results["exit-os"].kernel_died == ["Toy"]
    assert _points(graded.results["exit-os"]) == 0
    sys_exit = grades_by_name(graded.results["exit-sys"])
    # IPython turns sys.exit() in a cell into an error output and keeps the kernel: the cells
    # after it still run; the package's relu_forward exiting fails its test and its judge cases.
    assert sys_exit["test_double"].score_before_check == 2
    assert sys_exit["test_relu"].auto_score == 0
    assert not any(f.passed for f in graded.results["exit-sys"].functions if f.task == "relu_forward")


def test_a_loop_that_ignores_interrupts_is_bounded_by_the_cell_timeout(graded):
    result = graded.results["deaf-loop"]
    # the interrupt would be ignored, so at the cell timeout the kernel is killed: the loop's cell
    # and every later one get an error, and the notebook is listed as out of time
    assert result.timed_out == ["Toy"]
    assert _points(result) == 0
    assert result.seconds.notebooks < 9 * CELL_TIMEOUT


def test_fork_and_memory_bombs_are_contained(graded):
    out = _outputs(graded.course, "bombs")
    assert "fork bomb stopped by BlockingIOError" in " ".join(out.split()), out[:2000]
    assert "memory bomb stopped by MemoryError" in out, out[:2000]
    grades = grades_by_name(graded.results["bombs"])
    assert grades["test_double"].score_before_check == 2 and grades["test_relu"].auto_score == 3


def test_the_network_is_unreachable(graded):
    out = _outputs(graded.course, "network")
    # UDP to 127.0.0.1 may be sent: into the sandbox's own loopback, where nothing listens
    assert "tcp FAILED" in out and "unix FAILED" in out and ("udp FAILED" in out or "udp SENT" in out), out[:2000]
    assert graded.listener.seen == []


def _flood_branch(result, path, out):
    """Which way the flood ended, on this machine under its load this time."""
    if result.timed_out:
        return "ran past the cell timeout: its kernel was killed"
    if not result.nbgrader_ok and not path.exists():
        return "its kernel ran out of its own limits: nbgrader gave up on the notebook"
    if '"ename": "MessageTooLarge"' in out:
        return "the fd flood came as one message over the limit: its kernel was stopped"
    return "the fd flood was stopped by the kernel's file-size limit"


def test_floods_of_output_are_cut(graded, record_property):
    """Whichever way the flood ends (which depends on the machine's load, so it is reported, not
    asserted), it gains nothing: its notebook stays small, no cell keeps more than the cell's
    cap, and its test cells score at most what they score for the honest student; where its test
    cells ran to the end, exactly that."""
    result = graded.results["flood"]
    grades = grades_by_name(result)
    path = graded.course.step_dir("autograded", "flood") / "Toy.ipynb"
    out = _outputs(graded.course, "flood") if path.exists() else ""
    branch = _flood_branch(result, path, out)
    record_property("flood branch", branch)
    print("flood branch:", branch)
    assert all((g.auto_score or 0) <= g.max_score for g in grades.values()), grades
    assert (grades["test_double"].score_before_check or 0) <= 2 and (grades["test_relu"].auto_score or 0) <= 3
    if path.exists():
        assert path.stat().st_size < 8 << 20, (branch, path.stat().st_size)
        for cell in nbformat.read(path, as_version=4).cells:
            kept = len(json.dumps(cell.get("outputs", [])).encode())
            assert kept <= MAX_CELL_OUTPUT_BYTES + (64 << 10), (branch, kept)
    if branch == "the fd flood came as one message over the limit: its kernel was stopped":
        assert grades["test_double"].auto_score == 0 and grades["test_relu"].auto_score == 0
    if branch == "the fd flood was stopped by the kernel's file-size limit":
        assert "[output cut: more than" in out and "fd flood stopped" in out, out[-2000:]
        assert grades["test_double"].score_before_check == 2 and grades["test_relu"].auto_score == 3


def test_filling_its_own_space_is_the_students_and_the_grader_says_so(graded):
    """A kernel that fills what it may write is graded on what ran (the batch test: no student
    is "not graded"), and told so in grader-made words, not the kernel's."""
    out = " ".join(_outputs(graded.course, "filler").split())
    for folder in (".", "/tmp", "/dev/shm", "/run/cs231n-kernels/runtime"):
        assert re.search(rf"filled {re.escape(folder)} \d+ MB, then errno {errno.ENOSPC}", out), out[:2000]
    result = graded.results["filler"]
    assert result.nbgrader_ok and result.out_of_space == ["Toy"]
    grades = grades_by_name(result)
    assert grades["test_double"].score_before_check == 2 and grades["test_relu"].auto_score == 3
    assert [sid for sid, r in graded.results.items() if r.out_of_space] == ["filler"]
    from autograder.results.feedback import render
    from autograder.results.summary import summarize

    assert "filled the disk space a notebook's kernel may write to" in html.unescape(render(result, "a2"))
    assert "  filler: filled the space its kernel may write to: Toy" in summarize(graded.results, {}, 1)


def test_deleted_and_edited_test_cells_are_graded_as_in_the_source(graded):
    grades = grades_by_name(graded.results["tamper"])
    assert grades["test_double"].max_score == 2 and grades["test_double"].score_before_check == 0
    assert grades["test_relu"].max_score == 3 and grades["test_relu"].auto_score == 3


def test_feedback_shows_nothing_secret(graded):
    from autograder.results.feedback import write_feedback

    pages = write_feedback(graded.course)
    assert set(pages) == set(graded.students)
    for student, page in pages.items():
        text = page.read_text()
        for secret in (HIDDEN_LINE, HIDDEN_SECRET, "BEGIN HIDDEN", "SQLite format 3"):
            assert secret not in text, student
        if student != "honest":
            assert HONEST_MARK not in text, student


def test_nothing_is_left_running(graded):
    import subprocess

    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=False).stdout
    assert [line for line in ps.splitlines() if str(graded.course.root) in line] == []


def test_errors_count_against_the_output_caps_wherever_they_come_from(graded):
    """Error names, values and tracebacks, on iopub and only in the execute reply, are cut and
    counted; a message over the grader's limit stops the kernel, said in the grader's words."""
    from autograder.notebooks.bounded_execute import (ERROR_KEPT, MAX_CELL_OUTPUT_BYTES, MAX_MESSAGE_BYTES,
                                                      MAX_NOTEBOOK_OUTPUT_BYTES)

    result = graded.results["error-flood"]
    path = graded.course.step_dir("autograded", "error-flood") / "Toy.ipynb"
    submitted = graded.course.step_dir("submitted", "error-flood") / "Toy.ipynb"
    assert path.stat().st_size < submitted.stat().st_size + MAX_NOTEBOOK_OUTPUT_BYTES
    cells = nbformat.read(path, as_version=4).cells
    errors = [out for cell in cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert errors and max(len(out.ename) for out in errors) <= ERROR_KEPT[0]
    names = [out.ename[:1] for out in errors]
    assert names.count("W") == names.count("E") == names.count("R") == 6, names  # raw, raised, reply only
    for cell in cells:
        if "for _ in range(20)" in cell.source and cell.outputs[0].ename != "NotRun":  # 4 MB of errors
            assert 1 < len(cell.outputs) < 20 and len(json.dumps(cell.outputs)) < MAX_CELL_OUTPUT_BYTES
    too_large = [out for out in errors if out.ename == "MessageTooLarge"]
    assert len(too_large) == 1 and str(MAX_MESSAGE_BYTES) in too_large[0].evalue
    assert names[-2:] == ["N", "N"]  # NotRun: the test cells after it
    assert result.nbgrader_ok and result.timed_out == []
    assert result.memory_mb.nbgrader < 0.5 * NBGRADER_MEMORY_MB, result.memory_mb
    assert result.memory_mb.worker < WORKER_MEMORY_MB, result.memory_mb


def test_a_flood_past_nbgraders_own_memory_limit_costs_its_student_alone(graded):
    """A message of many parts, each under the limit per part, fills nbgrader's own cgroup: the
    OOM killer ends that student's nbgrader, which is the student's failure, said so."""
    result = graded.results["frames"]
    assert not result.nbgrader_ok
    assert result.nbgrader_log.startswith(f"nbgrader ran out of the {NBGRADER_MEMORY_MB} MiB"), result.nbgrader_log[:300]
    assert result.memory_mb.nbgrader >= 0.9 * NBGRADER_MEMORY_MB, result.memory_mb
    assert _points(result) == 0
    assert result.memory_mb.worker < WORKER_MEMORY_MB, result.memory_mb


def test_a_kernel_cannot_lower_its_oom_priority(graded):
    out = _outputs(graded.course, "bombs")
    assert "oom_score_adj 1000 write 0: OSError now 1000" in out or (
        "oom_score_adj 1000 write 0: PermissionError now 1000" in out), out[-2000:]
