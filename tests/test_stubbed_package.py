"""The starter code: with every solution region replaced by the stub, the package imports, every
function students do not write still works, and the package's tests fail only with the
NotImplementedError of a stubbed function."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.release.stubs import MarkerError, check_markers, strip_solutions
from cs231n.tasks import find_tasks, tasks_in_file

# one worker runs this file, so its module-scoped fixture is built once
pytestmark = pytest.mark.xdist_group("stubbed_run")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_TESTS = ["test_layers.py", "test_classifiers.py", "test_optim.py", "test_solver.py",
                 "test_fast_layers.py", "test_gradient_check.py", "test_arch.py", "test_residual.py",
                 "test_backward_stored.py"]


@pytest.fixture(scope="module")
def stubbed_run(tmp_path_factory):
    """Run the package's own tests against a stubbed copy of it; return the recorded results."""
    from autograder.release.stubs import strip_package

    tmp = tmp_path_factory.mktemp("stubbed")
    tasks = strip_package(ROOT / "cs231n", tmp / "cs231n", keep_binaries=True)
    report = tmp / "report.json"
    tests = [str(ROOT / "tests" / name) for name in PACKAGE_TESTS if (ROOT / "tests" / name).exists()]
    env = {**os.environ, "STUBBED_RUN_REPORT": str(report),
           "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT / "tests")])}
    proc = subprocess.run(
        # --confcutdir: not the instructor suite's root conftest.py, whose folder pytest would put first
        # on sys.path, ahead of the stubbed copy
        [sys.executable, "-m", "pytest", "-q", "-p", "stubbed_run_plugin", "-p", "no:cacheprovider",
         "--confcutdir", str(ROOT / "tests"),
         "-p", "no:randomly", "--hypothesis-seed=0", *tests],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), f"the stubbed run crashed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return tasks, json.loads(report.read_text()), tmp, proc


def test_the_stubbed_package_was_the_one_tested(stubbed_run):
    tasks, report, tmp, _ = stubbed_run
    assert Path(report["package"]).parent == tmp / "cs231n"
    assert len(tasks) >= 25 and len(set(tasks)) == len(tasks)


def test_every_failure_is_the_not_implemented_error_of_a_stub(stubbed_run):
    tasks, report, tmp, proc = stubbed_run
    bad = {node: r for node, r in report["tests"].items() if r["outcome"] == "failed" and (
        r.get("exc_type") != "NotImplementedError" or r.get("raised_by") != "raise NotImplementedError()"
        or not r.get("raised_file", "").startswith(str(tmp)))}
    assert not bad, "tests that failed for another reason than a stub:\n" + json.dumps(bad, indent=1)


def test_every_task_has_checks_and_they_fail_on_the_stub(stubbed_run):
    tasks, report, _, _ = stubbed_run
    failed_marks = {mark for r in report["tests"].values() if r["outcome"] == "failed" for mark in r["marks"]}
    untested = sorted(set(tasks) - failed_marks)
    assert not untested, f"student tasks without a failing check on the starter code: {untested}"


def test_tests_of_given_code_pass_on_the_stub(stubbed_run):
    """A test that carries no task mark checks code students are given: it must not need a stub
    (the Solver, sgd, the gradient checker, the fast layers, shape errors...)."""
    tasks, report, _, _ = stubbed_run
    given = {node: r for node, r in report["tests"].items() if not set(r["marks"]) & set(tasks)}
    assert len(given) >= 20
    broken = {node: r for node, r in given.items() if r["outcome"] == "failed"
              and "ConvNet" not in node}  # the ConvNet is given but stands on students' layers
    assert not broken, json.dumps(broken, indent=1)


def test_find_tasks_sees_the_same_tasks_before_and_after_stubbing(stubbed_run):
    tasks, _, tmp, _ = stubbed_run
    assert sorted(tasks) == sorted(t.name for t in find_tasks(tmp / "cs231n"))
    assert sorted(tasks) == sorted(t.name for t in find_tasks())


@pytest.mark.parametrize("source, fragment", [
    ("def f():\n    # see ### BEGIN SOLUTION below\n    pass\n", "must stand alone"),
    ("def f():\n    ### BEGIN SOLUTION\n    x = 1\n", "never closed"),
    ("def f():\n    ### END SOLUTION\n", "without a region"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n", "not closed"),
])
def test_malformed_markers_are_refused(source, fragment):
    with pytest.raises(MarkerError, match=fragment):
        strip_solutions(source)


def test_stub_keeps_indentation_and_surroundings():
    source = "def f(x):\n    y = 2\n    ### BEGIN SOLUTION\n    y = x * y\n    ### END SOLUTION\n    return y\n"
    assert strip_solutions(source) == ("def f(x):\n    y = 2\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\n    return y\n")


def test_a_region_outside_a_function_is_refused(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")
    with pytest.raises(ValueError, match="inside a function"):
        tasks_in_file(path)


def test_package_markers_are_well_formed():
    for path in (ROOT / "cs231n").rglob("*.py"):
        check_markers(path.read_text(), str(path))
