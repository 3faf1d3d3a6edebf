"""The list of student tasks never drifts from the solution regions."""
from collections import defaultdict

from cs231n.tasks import PACKAGE_DIR, TASKS, TASKS_BY_FILE, find_tasks


def test_task_list_matches_the_solution_regions():
    found = defaultdict(list)
    for task in find_tasks():
        found[task.path.relative_to(PACKAGE_DIR).as_posix()].append(task.name)
    assert {k: tuple(v) for k, v in found.items()} == TASKS_BY_FILE, (
        "cs231n/tasks.py TASKS_BY_FILE must list every function or class that holds a solution "
        "region, file by file, in order")
    assert len(set(TASKS)) == len(TASKS)
