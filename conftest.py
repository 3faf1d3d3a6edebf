"""How the instructor suite (tests/) runs fast on two xdist workers; here, not in tests/conftest.py,
which the student release ships.

- xdist_group marks work again: pytest-xdist 3.8 tags a grouped test by writing `item._nodeid`,
  which pytest 9.2 no longer reads (a node's id is `item._id`), so every group was scattered over
  both workers and each worker graded every module-scoped batch itself.
- A file whose tests read one module-scoped graded batch runs on one worker (an xdist group), so
  the batch is graded once, not once per worker.
- The longest groups are handed out first, the many short tests last, so the workers finish
  together (xdist's own order is by test count, which put hour-long groups of one test last).
- nbgrader reads its migration head by running `alembic heads` for every new gradebook (seconds
  each, twice per course); each test process reads it once.
"""
import functools

import pytest

try:
    from _pytest.nodeid import NodeId  # pytest >= 9.2: the id xdist's loadgroup scheduler reads
except ImportError:  # an older pytest reads the `_nodeid` xdist writes
    NodeId = None

# files (by name, wherever they sit under tests/) whose tests share a module-scoped batch
SHARED_BATCH = ("test_feedback_evidence", "test_notebook_kernels", "test_sandbox_in_a_batch", "test_causes",
                "test_hand_grades", "test_pages_staff_open", "test_browser", "test_judge")

# groups and files, longest first (each one's total, from a whole run's --junitxml on 3 workers);
# the rest follow
LONGEST_FIRST = ("whose_failure", "gradescope", "self_study", "grading_failures", "grading_scale", "jupyterhub",
                 "student_release", "demo_class", "test_torch_optional", "test_sandbox_in_a_batch",
                 "test_feedback_evidence", "test_notebook_kernels", "stubbed_run", "test_notebooks",
                 "test_secrets_on_command_lines", "test_pages_staff_open", "test_task_isolation", "test_student_runs",
                 "hostile_metadata", "test_judge", "test_causes", "test_hand_grades", "test_browser")


def _module(item):
    return item.path.stem


def _group(item):
    """The item's xdist group name as xdist spells it (several marks: joined by `_`), or None."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


def pytest_configure(config):
    try:
        import nbgrader.api
    except ImportError:
        pass
    else:  # the head of nbgrader's own migrations: fixed for an installed nbgrader
        nbgrader.api.get_alembic_version = functools.cache(nbgrader.api.get_alembic_version)
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False  # keep the order set below


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):  # only in the workers of `--dist loadgroup`
        return
    for item in items:
        if _group(item) is None and _module(item) in SHARED_BATCH:
            item.add_marker(pytest.mark.xdist_group(_module(item)))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), rank.get(_module(item), len(rank))))  # stable
    for item in items:  # `<id>@<group>`, the id xdist's scheduler keeps on one worker
        group = _group(item)
        if NodeId is not None and group and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
