"""Notebooks that need an optional package: graded only where the package is installed.

PyTorch.ipynb needs torch, which the course does not require (`make install-torch`). Where
grading runs without it, the notebook is left out of the nbgrader run and its grade cells are
reported as not attempted, with zero points and a message saying why, instead of as a string of
failed cells. The check runs in the grading worker, whose interpreter and site-packages are the
notebook kernels' (the kernels are forked from the same venv).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPTIONAL_NOTEBOOKS = {"PyTorch": "torch"}  # notebook name: the module it needs


@dataclass(frozen=True)
class SetAside:
    """A notebook left out of grading: its name and why."""

    notebook: str
    reason: str


def importable(module: str) -> bool:
    """True if `module` can be imported by this interpreter (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def set_aside_unrunnable(submission_dir: str | Path,
                         importable: Callable[[str], bool] = importable) -> list[SetAside]:
    """Remove from `submission_dir` the optional notebooks whose module cannot be imported here.

    Returns a list of SetAside, one per notebook removed (a notebook the student did not hand in
    is not listed: nothing was set aside)."""
    set_aside: list[SetAside] = []
    for notebook, module in OPTIONAL_NOTEBOOKS.items():
        path = Path(submission_dir) / f"{notebook}.ipynb"
        if path.exists() and not importable(module):
            path.unlink()
            set_aside.append(SetAside(notebook, f"not attempted: {module} is not installed where this "
                                                f"was graded, so {notebook}.ipynb was not run"))
    return set_aside


def mark_not_attempted(notebooks: list[dict[str, Any]], set_aside: list[SetAside]) -> None:
    """Mark the set-aside notebooks in `notebooks` (evidence.read_notebook_grades' list), in place:
    every grade cell 0 points, not waiting for a manual grade, with the reason as its message,
    and the notebook's entry gets `not_attempted` (the reason)."""
    reasons = {s.notebook: s.reason for s in set_aside}
    for nb in notebooks:
        reason = reasons.get(nb["notebook"])
        if reason is None:
            continue
        nb["not_attempted"] = reason
        for g in nb["grades"]:
            g.update(auto_score=0.0, needs_manual_grade=False, message=reason)
