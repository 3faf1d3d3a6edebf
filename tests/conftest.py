"""Shared test set-up: one pytest mark per student task (cs231n.tasks.TASKS).

`pytest -m conv_forward_naive` runs exactly the checks of that task; `--strict-markers` (in
pyproject.toml) makes a misspelt mark an error rather than a silently empty selection.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from cs231n.tasks import TASKS

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
