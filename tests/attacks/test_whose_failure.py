"""Findings 3 and 4 of issue 19: a student pays only for their own failures.

- a kernel the machine's OOM killer takes (a real one: the grading runs in a cgroup standing for a
  smaller machine, and a process beside the run takes that machine's memory) is the grader's
  failure: "not graded", and the next run grades the student in full;
- a kernel that kills itself, or passes its own run's memory limit, is the student's: a score,
  the notebook graded on the cells that ran before;
- a run's first kernel that does not start (before any of the student's code ran) is the
  grader's; a later one, which an earlier kernel may have stopped, costs its notebook alone;
- a notebook that cannot be read (not JSON, nested 100,000 deep, not a valid notebook) costs that
  notebook alone: the student's other notebook is graded in full.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from autograder.budget import TimeBudget
from autograder.notebooks import run as nb_run
from autograder.intake.collect import collect
from autograder.config import PACKAGE, ROOT, Course
from autograder.grading.grade import grade_all
from autograder.sandbox.cgroups import CGROUP_ROOT, limits_mode
from autograder.sandbox.bubblewrap import isolation_available
from autograder.release.build import build_release
from autograder.results.store import merged_digests, not_graded, stored_results
from autograder.notebooks.unreadable import MAX_DEPTH, why_unreadable
from course_fixtures import grades_by_name, make_toy_source
from process_tree import descendants, kernels, processes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("whose_failure")]
KW = {"progress": False, "budget": TimeBudget(judge_case=5, cell=120)}
MARK = "honest-waits"  # the name an honest cell gives its kernel, so the test sees it running
WAIT = f"import ctypes, time\nctypes.CDLL(None).prctl(15, b'{MARK}', 0, 0, 0)\ntime.sleep(40)"
SELF_KILL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
OWN_LIMIT_MB = 2048  # the kernels' memory in the own-limit test: their run's cgroup holds 3072 MB
# 300 MB in the kernel, then helpers of 300 MB each until the run passes its own limit; the
# kernel (those 300 MB and ipykernel, numpy: the toy's zygote preloads nothing more) is the largest process of the run, and
# the OOM killer's choice
OWN_LIMIT = '''import subprocess, sys
import numpy as np
mine = np.ones(300 << 17)
hold = "import time\\nb = bytearray(300 << 20)\\nb[::4096] = b'1' * len(b[::4096])\\nprint('held', flush=True)\\ntime.sleep(600)"
helpers = []
for _ in range(12):
    helpers.append(subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE))
    helpers[-1].stdout.readline()
print("past its own limit and still alive?", mine.sum())'''


def _needs_sandbox():
    if not isolation_available() or os.geteuid() != 0:
        pytest.skip("grading needs root and bubblewrap")


def _course(tmp, notebooks=("Toy",)):
    """The toy course; each name in notebooks is a copy of the toy notebook."""
    src = make_toy_source(tmp / "src")
    for name in notebooks:
        if name != "Toy":
            shutil.copyfile(src / "a2" / "Toy.ipynb", src / "a2" / f"{name}.ipynb")
    root = tmp / "course"
    course = Course(root=root, db_url=f"sqlite:///{root / 'gradebook.db'}", source_root=src)
    build_release(course)
    return course


def _submit(course, folder, student, cells=(), broken=None, into=None):
    """Collect a copy of the reference with code `cells` appended to every notebook (or to those
    named in `into`); broken: {notebook: bytes} written over those notebooks."""
    (folder / student).mkdir(parents=True)
    for path in sorted(course.source.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if into is None or path.stem in into:
            nb.cells.extend(new_code_cell(code) for code in cells)
        nbformat.write(nb, folder / student / path.name)
    for name, data in (broken or {}).items():
        (folder / student / f"{name}.ipynb").write_bytes(data)
    shutil.copytree(PACKAGE, folder / student / "cs231n", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    assert not [c.error for c in collect(folder, course) if c.error]


def _full_marks(result, notebook="Toy"):
    """The reference's points in notebook: every automatic cell a task confirms (the toy's
    test_double names none: it keeps nothing)."""
    grades = {g.name: g for nb in result.notebooks if nb.notebook == notebook for g in nb.grades}
    return bool(grades) and all(g.auto_score == (0 if g.name == "test_double" else g.max_score)
                                for g in grades.values() if not g.needs_manual_grade)


# --------------------------------------------------------------------------------------------
# A kernel the machine kills is not the student's
# --------------------------------------------------------------------------------------------
def _own_memory_cgroup():
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_ROOT / "memory" / path.lstrip("/")
    return None


@pytest.fixture
def smaller_machine():
    """A cgroup v1 memory group standing for a smaller grading machine (under this process's
    own); yields its folder."""
    _needs_sandbox()
    own = _own_memory_cgroup()
    if limits_mode() != "cgroup v1" or own is None:
        pytest.skip("needs cgroup v1's memory controller (this machine's)")
    machine = own / f"smaller-machine-{os.getpid()}"
    machine.mkdir()
    try:
        yield machine
    finally:
        for pid in (machine / "cgroup.procs").read_text().split():
            try:
                (own / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        for child in machine.iterdir():
            if child.is_dir():
                child.rmdir()
        machine.rmdir()


def _join(group):
    return lambda: (group / "cgroup.procs").write_text(str(os.getpid()))


def _waiting_kernel(root, running):
    """The pid of a kernel below the process root once an honest cell of it waits (it names
    itself MARK); running() says whether the grading still runs."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and running():
        table = processes()
        for pid in kernels(descendants(root, table), table):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == MARK:
                    return pid
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError("no kernel of the run reached its waiting cell")


HOG = '''import sys
from pathlib import Path
kernel = Path(f"/proc/{sys.argv[1]}/stat")
def alive():
    try:
        return kernel.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
held = []
while alive() and len(held) < 256:  # 16 MB at a time, at most 4 GB
    chunk = bytearray(16 << 20)
    chunk[::4096] = b"1" * len(chunk[::4096])
    held.append(chunk)
print(len(held) * 16, "MB taken")'''


def _take_the_machine_s_memory(machine, kernel):
    """Leave the machine 256 MB more than it uses, and let another process take them and more
    until the OOM killer acts (it takes the kernel: first in line, oom_score_adj 1000)."""
    usage = int((machine / "memory.usage_in_bytes").read_text())
    (machine / "memory.limit_in_bytes").write_text(str(usage + (256 << 20)))
    try:
        hog = subprocess.run([sys.executable, "-c", HOG, str(kernel)], preexec_fn=_join(machine),  # noqa: PLW1509
                             capture_output=True, text=True, timeout=300, check=False)
    finally:
        (machine / "memory.limit_in_bytes").write_text("-1")
    return hog


def test_a_kernel_the_machine_s_oom_killer_takes_is_not_graded_and_the_next_run_grades_it(tmp_path, smaller_machine):
    """Before: the honest student was stored as graded with the notebook's points lost (0 of
    its 3 confirmed points here; 77/177 for the real assignment in the issue). Now: "not graded"
    saying why, nothing stored as a score, and the next run grades them in full."""
    course = _course(tmp_path)
    _submit(course, tmp_path / "subs", "honest", cells=[WAIT])
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    argv = [sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade", "--workers", "1"]
    run = subprocess.Popen(argv, cwd=ROOT, env=env, preexec_fn=_join(smaller_machine),  # noqa: PLW1509
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        hog = _take_the_machine_s_memory(smaller_machine, _waiting_kernel(run.pid, lambda: run.poll() is None))
        output = run.communicate(timeout=900)[0]
    finally:
        if run.poll() is None:
            run.kill()
    assert "MB taken" in hog.stdout, hog.stderr
    assert merged_digests(course) == {}, f"stored as graded: {stored_results(course)}\n{output}"
    why = not_graded(course)["honest"].reason
    assert "killed from outside" in why and "OOM killer" in why and "Toy" in why, why

    results, failures = grade_all(course, workers=1, **KW)  # no --force: not graded is pending
    assert failures == {} and set(results) == {"honest"}
    assert _full_marks(results["honest"]) and all(f.passed for f in results["honest"].functions)
    assert results["honest"].kernel_died == [] and not_graded(course) == {}


def _launcher_and_nbgrader():
    """(pid of the kernel's launcher, pid of the nbgrader that started it) below this process:
    the launcher.py launcher (one notebook: one launcher) and its parent."""
    table = processes()
    launchers = [pid for pid in descendants(os.getpid(), table) if "launcher.py -f" in table[pid].cmdline]
    assert len(launchers) == 1, [table[pid].cmdline for pid in launchers]
    return launchers[0], table[launchers[0]].ppid


@pytest.mark.parametrize("victim", ["launcher", "nbgrader"])
def test_a_grader_process_killed_by_a_signal_is_not_graded_and_the_next_run_grades_it(tmp_path, victim):
    """SIGKILL from outside to the kernel's launcher or to the student's nbgrader (grader's
    processes, out of the student's reach) while an honest cell runs. Before: stored as graded,
    the notebook's points lost. Now: not graded, and the next run grades them in full."""
    _needs_sandbox()
    course = _course(tmp_path)
    _submit(course, tmp_path / "subs", "honest", cells=[WAIT])
    grading, killed = threading.Event(), []

    def kill():
        _waiting_kernel(os.getpid(), lambda: not grading.is_set())
        pid = dict(zip(("launcher", "nbgrader"), _launcher_and_nbgrader()))[victim]
        killed.append(processes()[pid].cmdline)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    try:
        results, failures = grade_all(course, workers=1, **KW)
    finally:
        grading.set()
        killer.join(30)
    assert killed and ("launcher.py" in killed[0]) == (victim == "launcher"), killed
    assert results == {} and list(failures) == ["honest"], {sid: r.notebooks for sid, r in results.items()}
    said = {"launcher": "its launcher, a grader's process, was killed by SIGKILL",
            "nbgrader": "nbgrader was killed by SIGKILL"}[victim]
    assert said in failures["honest"] and merged_digests(course) == {}, failures

    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and _full_marks(results["honest"]) and not_graded(course) == {}


def test_a_first_kernel_that_does_not_start_is_not_graded_and_the_next_run_grades_it(tmp_path, monkeypatch):
    """The run's kernel zygote does not start (on a loaded machine: not within its time; here,
    whatever the machine's speed: its sandbox may open 3 files, so not even its own script), so
    the first notebook's kernel cannot start, before any of the student's code ran. Before: stored
    as graded, the notebook 0 ("some notebooks could not be run"). Now: not graded, saying so, and
    the next run grades the student in full."""
    _needs_sandbox()
    course = _course(tmp_path)
    _submit(course, tmp_path / "subs", "honest")
    with monkeypatch.context() as patch:
        patch.setitem(nb_run.KERNEL_LIMITS, "nofile", 3)
        results, failures = grade_all(course, workers=1, **KW)
    assert results == {} and list(failures) == ["honest"] and merged_digests(course) == {}
    why = not_graded(course)["honest"].reason
    assert "the kernel of Toy.ipynb failed on the grader's side: it did not start, before any of the " \
           "student's code had run, its launcher's exit status 2" in why, not_graded(course)["honest"].log
    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and _full_marks(results["honest"]) and not_graded(course) == {}


def test_a_run_that_cannot_be_set_up_is_not_graded_and_the_next_run_grades_it(tmp_path, monkeypatch):
    """The run's tmpfs cannot be made (here: its mount point lies under a file), before any
    notebook ran. Before: nbgrader exited 1, read as the student's, and the student was stored
    as graded with no notebook at all. Now: not graded, saying why, then graded in full."""
    _needs_sandbox()
    if os.geteuid() != 0:
        pytest.skip("only root's runs have a tmpfs of their own")
    course = _course(tmp_path)
    _submit(course, tmp_path / "subs", "honest")
    with monkeypatch.context() as patch:
        patch.setattr(nb_run, "KERNELS_MOUNT", "/etc/hostname/kernels")
        results, failures = grade_all(course, workers=1, **KW)
    assert results == {} and list(failures) == ["honest"] and merged_digests(course) == {}
    why = not_graded(course)["honest"].reason
    assert why.startswith("the student's run could not be set up, before any of their code ran (") \
           and "NotADirectoryError" in why and why.endswith(": grade again"), why
    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and _full_marks(results["honest"]) and not_graded(course) == {}


ZYGOTE_KILL = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)  # the run's kernel zygote"


def test_a_kernel_that_stops_the_next_kernels_start_costs_its_student_not_the_grader(tmp_path):
    """The first notebook's kernel kills the run's kernel zygote (its parent, in its sandbox),
    so the second notebook's kernel cannot start. That is the student's doing: graded, that
    notebook alone scoring nothing (before: both), never "not graded" (a run the student could
    make fail on every try)."""
    _needs_sandbox()
    course = _course(tmp_path, notebooks=("Toy", "Zeta"))
    _submit(course, tmp_path / "subs", "saboteur", cells=[ZYGOTE_KILL], into=("Toy",))  # Toy runs first (by name)
    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and not_graded(course) == {}, failures
    assert set(merged_digests(course)) == {"saboteur"}
    result = results["saboteur"]
    # Toy's own kernel dies with the sandbox's zygote, before or after its last cell (which holds
    # no points) answered: a race, either way the student's
    assert "Zeta" in result.kernel_died and _full_marks(result, "Toy"), result.nbgrader_log
    zeta = {g.name: g for nb in result.notebooks if nb.notebook == "Zeta" for g in nb.grades}
    assert zeta and all(not g.auto_score for g in zeta.values()), zeta
    autograded = nbformat.read(course.step_dir("autograded", "saboteur") / "Zeta.ipynb", as_version=4)
    said = {o.evalue for c in autograded.cells if c.cell_type == "code" for o in c.outputs}
    assert len(said) == 1 and "the kernel died before it answered" in said.pop()


# --------------------------------------------------------------------------------------------
# A kernel that ends itself, or passes its own limits, is the student's
# --------------------------------------------------------------------------------------------
def test_a_kernel_that_kills_itself_or_passes_its_own_memory_limit_is_the_student_s(tmp_path, monkeypatch):
    """Both are scores, graded on the cells that ran before the death (before: the whole
    notebook failed, 0 points); the cell where it died says so."""
    _needs_sandbox()
    if limits_mode() == "rlimits":
        pytest.skip("the own-limit case needs the run's cgroup")
    monkeypatch.setitem(nb_run.KERNEL_LIMITS, "memory_mb", OWN_LIMIT_MB)
    course = _course(tmp_path)
    _submit(course, tmp_path / "subs", "self-kill", cells=[SELF_KILL, "print('after the kill')"])
    _submit(course, tmp_path / "subs", "own-limit", cells=[OWN_LIMIT, "print('after the limit')"])
    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and not_graded(course) == {}
    assert set(merged_digests(course)) == {"self-kill", "own-limit"}
    for student, said in (("self-kill", "it ended itself"), ("own-limit", "reached its own memory limit")):
        result = results[student]
        assert result.kernel_died == ["Toy"], (student, result.nbgrader_log)
        assert _full_marks(result), (student, grades_by_name(result))  # the cells before the death
        autograded = nbformat.read(course.step_dir("autograded", student) / "Toy.ipynb", as_version=4)
        died, after = autograded.cells[-2], autograded.cells[-1]
        assert [o.ename for o in died.outputs if o.output_type == "error"] == ["DeadKernelError"], student
        assert said in died.outputs[-1].evalue, died.outputs
        assert after.outputs[0].ename == "NotRun", student


# --------------------------------------------------------------------------------------------
# A notebook that cannot be read costs that notebook alone
# --------------------------------------------------------------------------------------------
def _valid_notebook_json():
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[new_code_cell("x = 1")])))


def _not_a_notebook():
    nb = _valid_notebook_json()
    nb["cells"][0]["execution_count"] = "five"
    del nb["cells"][0]["source"]
    return json.dumps(nb).encode()


def _nbgrader_metadata_not_an_object():
    nb = _valid_notebook_json()
    nb["cells"][0]["metadata"]["nbgrader"] = 5
    return json.dumps(nb).encode()


BROKEN = {
    "not-json": b'{"cells": [{"cell_type": "code", "source": "x = 1"',
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "nested-in-metadata": json.dumps({**_valid_notebook_json(), "metadata": {"deep": json.loads("[" * 500 + "]" * 500)}}).encode(),
    "not-a-notebook": _not_a_notebook(),
    "nbgrader-metadata": _nbgrader_metadata_not_an_object(),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_why_a_notebook_cannot_be_read_is_said_without_raising(tmp_path, kind):
    path = tmp_path / "Dropout.ipynb"
    path.write_bytes(BROKEN[kind])
    why = why_unreadable(path)
    expected = {"not-json": "not valid JSON", "nested": f"more than {MAX_DEPTH} deep",
                "nested-in-metadata": f"more than {MAX_DEPTH} deep", "not-a-notebook": "not a valid notebook",
                "nbgrader-metadata": "nbgrader metadata is not an object"}[kind]
    assert why and expected in why, why
    path.write_text(json.dumps(_valid_notebook_json()))
    assert why_unreadable(path) is None


def test_a_notebook_that_cannot_be_read_costs_that_notebook_alone(tmp_path):
    """Before: one broken notebook failed the student's whole nbgrader run, and the valid one
    scored 0 with it (77 instead of 92 in the issue)."""
    _needs_sandbox()
    course = _course(tmp_path, notebooks=("Toy", "Dropout"))
    _submit(course, tmp_path / "subs", "valid")
    for kind, data in BROKEN.items():
        _submit(course, tmp_path / "subs", kind, broken={"Dropout": data})
    results, failures = grade_all(course, workers=1, **KW)
    assert failures == {} and set(results) == {"valid", *BROKEN}
    valid = {nb.notebook: nb for nb in results["valid"].notebooks}
    assert _full_marks(results["valid"], "Toy") and _full_marks(results["valid"], "Dropout")
    for kind in BROKEN:
        notebooks = {nb.notebook: nb for nb in results[kind].notebooks}
        assert notebooks["Toy"] == valid["Toy"], kind  # every point of the valid notebook
        dropout = notebooks["Dropout"]
        assert dropout.not_attempted.startswith("could not be read: "), kind
        assert all(g.auto_score == 0 and g.message == dropout.not_attempted for g in dropout.grades)
        assert results[kind].functions == results["valid"].functions
