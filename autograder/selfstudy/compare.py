"""After a task passes, the reference: the learner's function beside the instructor's.

    python -m autograder compare WORKSPACE TASK        (make compare TASK=conv_forward_naive)

The task's checks (the release's public tests marked with the task, `make check TASK=...`) run
first, in the workspace with its own Python; while any fails, the reference stays hidden and
the command says how to see why. Once they pass, it prints a unified diff of the learner's task
(the function, or the class for a network) against the reference, whole.
"""
from __future__ import annotations

import ast
import difflib
import os
import subprocess
from pathlib import Path

from cs231n.tasks import BEGIN_SOLUTION, END_SOLUTION, TASKS_BY_FILE

from autograder.budget import TimeBudget
from autograder.config import PACKAGE


class CompareRefused(Exception):
    """The reference is not shown; the message says why and what to do."""


def file_of(task: str) -> str:
    """The package file (relative to cs231n/) that holds task; CompareRefused for an unknown one."""
    for name, tasks in TASKS_BY_FILE.items():
        if task in tasks:
            return name
    known = ", ".join(t for tasks in TASKS_BY_FILE.values() for t in tasks)
    raise CompareRefused(f"no task named {task!r}; the tasks are: {known}")


def task_source(path: str | Path, task: str) -> str | None:
    """The source of the top-level function or class `task` in the file at path, or None."""
    source = Path(path).read_text(encoding="utf-8")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == task:
            segment = ast.get_source_segment(source, node, padded=True)
            return None if segment is None else segment + "\n"
    return None


def run_checks(workspace: str | Path, task: str, *, budget: TimeBudget = TimeBudget()) -> tuple[bool, str]:
    """(passed, the run's last lines): the task's checks in the workspace, with its Python."""
    workspace = Path(workspace)
    python = workspace / ".venv" / "bin" / "python"
    if not python.exists():
        raise CompareRefused(f"{workspace} has no .venv: run `make self-study` (or `make install` there) first")
    env = {**os.environ, "CS231N_DATASET": os.environ.get("CS231N_DATASET", "digits"),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", task, "tests"],
                          cwd=workspace, env=env, capture_output=True, text=True, timeout=budget.task_checks)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return proc.returncode == 0, tail


def compare(workspace: str | Path, task: str, *, budget: TimeBudget = TimeBudget()) -> str:
    """The unified diff of the learner's task against the reference (a str); CompareRefused while
    the task's checks fail, or when either side has no such function."""
    name = file_of(task)
    passed, tail = run_checks(workspace, task, budget=budget)
    if not passed:
        raise CompareRefused(f"the checks of {task} do not pass yet, so its reference stays hidden:\n{tail}\n"
                             f"`make check TASK={task}` in the workspace shows what fails and why")
    mine, theirs = task_source(Path(workspace) / "cs231n" / name, task), task_source(PACKAGE / name, task)
    if mine is None:
        raise CompareRefused(f"cs231n/{name} in the workspace has no top-level {task}")
    if theirs is None:
        raise CompareRefused(f"the reference cs231n/{name} has no top-level {task}: tell the course staff")
    yours = mine.splitlines(True)
    reference = [line for line in theirs.splitlines(True) if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)]
    diff = "".join(difflib.unified_diff(yours, reference, f"yours: cs231n/{name}", f"reference: cs231n/{name}",
                                        n=len(yours) + len(reference)))
    return diff or f"{task}: yours is the reference, line for line\n"


def main(workspace: str | Path, task: str, *, budget: TimeBudget = TimeBudget()) -> int:
    """The compare command; returns its exit code (0 shown, 1 refused)."""
    if not task:
        print("usage: make compare TASK=conv_forward_naive (a task whose checks pass)")
        return 2
    try:
        print(compare(workspace, task, budget=budget), end="")
    except CompareRefused as refused:
        print(f"compare: {refused}")
        return 1
    return 0
