"""Fixtures of the attack tests: the product's own sandboxes (product_sandboxes.py)."""
import contextlib
from pathlib import Path

import pytest

from product_sandboxes import SLOT_A, SLOT_RUN, judged, kernel_box
from product_sandboxes import kernel_run as product_kernel_run


@pytest.fixture(scope="session")
def run_spec(tmp_path_factory):
    """One student run's kernel side, as the grader sets it up (notebook_run.enter_run): the
    spec of its sandbox, its shared folder laid out, its zygote running."""
    with product_kernel_run(tmp_path_factory.mktemp("kernel-run"), SLOT_RUN) as (spec, address):
        assert address, "the run's kernel zygote did not start"
        yield spec


@pytest.fixture
def kernel_run(run_spec, tmp_path):
    """(the product's kernel sandbox in a fresh kernel work folder holding mine.py, the run's
    shared folder)."""
    notebook_dir = tmp_path / "notebook"
    notebook_dir.mkdir()
    (notebook_dir / "mine.py").write_text("x = 1\n")
    box, _ = kernel_box(run_spec, notebook_dir)
    return box, Path(run_spec.shared)


@pytest.fixture
def judge_box(tmp_path):
    """The judge's view: the product's judge sandbox over a prepared folder w (pkg/cs231n, judge/)."""
    with judged(tmp_path, SLOT_A) as view:
        yield view


@pytest.fixture
def judged_as(tmp_path):
    """judged_as(slot): the judge's own sandbox for one more student of user slot, until the test ends."""
    with contextlib.ExitStack() as runs:
        count = iter(range(1000))
        yield lambda slot: runs.enter_context(judged(tmp_path, slot, f"student-{next(count)}"))[0]
