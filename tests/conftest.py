"""Shared test set-up: one pytest mark per student task (cs231n.tasks.TASKS).

`pytest -m conv_forward_naive` runs exactly the checks of that task; `--strict-markers` (in
pyproject.toml) makes a misspelt mark an error rather than a silently empty selection.
"""
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from cs231n.tasks import TASKS
from helpers import BACKWARD, check_stored_backward, forward_problem

STUDENT_TASKS = list(TASKS)

settings.register_profile(
    "cs231n", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("cs231n")


def pytest_configure(config):
    for name in STUDENT_TASKS:
        config.addinivalue_line("markers", f"{name}: checks of the student task {name}")
    for name, text in [("slow", "takes more than a few seconds"),
                       ("fast_layers", "needs the compiled Cython extension")]:
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.fixture
def rng():
    """A seeded generator, so a failure can be replayed."""
    return np.random.default_rng(231)


def pytest_runtest_logreport(report):
    """For `make submit` (cs231n.submit.failing_tasks): append the task of each failed check
    to the file named by CS231N_FAILED_TASKS."""
    path = os.environ.get("CS231N_FAILED_TASKS")
    if path and report.failed:
        with open(path, "a", encoding="utf-8") as out:
            out.writelines(f"{name}\n" for name in report.keywords if name in TASKS)


# A check that runs another task's function, besides what the task's numerical checks differentiate.
NEEDS = {"test_batchnorm_backward_alt_equals_full_backward": "batchnorm_backward"}


@pytest.fixture(autouse=True)
def _blame_the_right_task(request):
    """Skip, saying why, a check of one task that would fail for another task's bug: a backward
    task's numerical checks while the forward pass they differentiate is not right (its stored
    case), and the checks in NEEDS while the task they use fails its stored case."""
    name = request.node.originalname or request.node.name
    marks = {m.name for m in request.node.iter_markers()} & set(BACKWARD)
    if "numerically" in name:
        for task in marks:
            problem = forward_problem(task)
            if problem:
                forward = BACKWARD[task][1]
                pytest.skip(f"this numerical check of {task} differentiates your {forward}, which {problem} "
                            f"(make check TASK={forward}); {task} was checked on its own against stored values")
    if name in NEEDS:
        try:
            check_stored_backward(NEEDS[name])
        except Exception:  # a wrong gradient (AssertionError), a stub, any bug
            pytest.skip(f"this check compares with your {NEEDS[name]}, which does not pass its own checks yet "
                        f"(make check TASK={NEEDS[name]})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A stub's bare NotImplementedError becomes: which function, in which file, to write."""
    report = (yield).get_result()
    error = call.excinfo
    if report.failed and error is not None and error.type is NotImplementedError and not error.value.args:
        last = error.traceback[-1]
        parts = Path(str(last.path)).parts
        if "cs231n" in parts:
            where = "/".join(parts[len(parts) - 1 - parts[::-1].index("cs231n"):])
            report.longrepr = (f"NotImplementedError: {last.name} in {where} is not written yet: fill in the part marked "
                               f"'# YOUR CODE HERE' (line {last.lineno + 1}), then run this check again")
