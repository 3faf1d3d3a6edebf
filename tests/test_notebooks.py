"""The assignment notebooks: each release version, as the release step builds it (solutions and
hidden tests cleared, the package stubbed), runs up to its first NotImplementedError, which comes
from a stub; and its nbgrader metadata is sound. That each source notebook runs top to bottom in
fast mode on the offline data with every public and hidden check passing is tested where the
grader runs it, in the sandbox (tests/test_self_study.py, grade-mine: full marks, no cell raising)."""
import os
import re
from pathlib import Path

import nbformat
import pytest
from course_fixtures import assignment_release

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = ROOT / "assignments" / "a2"
NOTEBOOKS = sorted(ASSIGNMENT.glob("*.ipynb"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STUB_LINE = "raise NotImplementedError()"
CELL_TIMEOUT = 900


def _ids(paths):
    return [p.stem for p in paths]


def execute(nb, env, cwd=ASSIGNMENT):
    """Run a notebook in a fresh kernel with `env` added to the environment, in the folder cwd."""
    from nbclient import NotebookClient

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


# One BLAS thread per kernel: the suite already runs a process per core, and OpenBLAS threads
# fighting over two cores made small-matrix training 20-50x slower.
FAST_ENV = {"CS231N_FAST": "1", "CS231N_DATASET": "digits", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def grade_cells(nb):
    return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release the release step builds: notebooks beside the stubbed package (no compiled
    fast layers: a student builds those, and the layers fall back to Python without them)."""
    return assignment_release(tmp_path_factory.mktemp("release"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_release_notebook_runs_to_its_first_stub(path, release):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(release / path.name, as_version=4)
    text = nbformat.writes(nb)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    env = {**FAST_ENV, "PYTHONPATH": str(release)}
    with pytest.raises(CellExecutionError) as info:
        execute(nb, env, cwd=release)
    error = info.value
    assert error.ename == "NotImplementedError", f"first error is not a stub:\n{ANSI.sub('', str(error))}"
    assert STUB_LINE in ANSI.sub("", error.traceback), "the NotImplementedError did not come from a stub"
    assert str(release) in ANSI.sub("", error.traceback) or "YOUR CODE HERE" in ANSI.sub("", str(error))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_nbgrader_metadata_is_sound(path):
    from nbgrader.preprocessors import CheckCellMetadata

    nb = nbformat.read(path, as_version=4)
    CheckCellMetadata().preprocess(nb, {})  # nbgrader's own schema check; raises if malformed
    cells = [c for c in nb.cells if "nbgrader" in c.get("metadata", {})]
    ids = [c.metadata.nbgrader["grade_id"] for c in cells]
    assert len(ids) == len(set(ids)), f"duplicate grade ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for c in cells:
        meta = c.metadata.nbgrader
        assert meta["schema_version"] == 3
        if meta.get("grade") and not _worth_nothing(c):
            assert meta.get("points", 0) > 0, f"{meta['grade_id']}: a graded cell needs points"
        if meta.get("grade") and not meta.get("solution"):
            assert meta.get("locked"), f"{meta['grade_id']}: a test cell must be locked"
    stated = nb.metadata.get("cs231n", {})
    regular = sum(c.metadata.nbgrader["points"] for c in grade_cells(nb)
                  if not c.metadata.nbgrader["grade_id"].startswith("extra_"))
    extra = sum(c.metadata.nbgrader["points"] for c in grade_cells(nb)
                if c.metadata.nbgrader["grade_id"].startswith("extra_"))
    assert (regular, extra) == (stated.get("points"), stated.get("extra_credit", 0)), (
        f"{path.name}: cells carry {regular} points + {extra} extra credit, the notebook's metadata "
        f"cs231n states {stated}")


def _worth_nothing(cell):
    """A test cell kept as a check for the student only: 0 points, no tasks, no re-check."""
    meta, claim = cell.metadata.nbgrader, cell.metadata.get("cs231n", {})
    return (not meta.get("solution") and meta.get("points") == 0 and not claim.get("tasks")
            and not claim.get("recheck"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_test_cell_names_the_evidence_for_its_points(path):
    """Each autograded test cell lists the student tasks it checks (metadata.cs231n.tasks, names
    from cs231n.tasks.TASKS); a cell with points and no tasks names a re-check the judge has."""
    from autograder.results.evidence import is_autograded_test
    from autograder.hidden.cases import RECHECKS
    from cs231n.tasks import TASKS

    rechecks = {r.name for r in RECHECKS}
    for cell in filter(is_autograded_test, nbformat.read(path, as_version=4).cells):
        grade_id, claim = cell.metadata.nbgrader.grade_id, cell.metadata.get("cs231n", {})
        tasks = claim.get("tasks")
        assert isinstance(tasks, list), f"{path.stem}/{grade_id}: no metadata.cs231n.tasks list"
        unknown = [t for t in tasks if t not in TASKS]
        assert not unknown, f"{path.stem}/{grade_id}: {unknown} are not student tasks"
        recheck = claim.get("recheck")
        assert recheck is None or recheck in rechecks, (
            f"{path.stem}/{grade_id}: re-check {recheck!r} is not in autograder/hidden/cases.py")
        if cell.metadata.nbgrader.points > 0 and not tasks:
            assert recheck, f"{path.stem}/{grade_id}: points without tasks need a re-check"


def test_the_notebooks_are_found():
    """Every test below is parametrized by NOTEBOOKS: an empty glob (a moved folder, a renamed
    suffix) would leave them with nothing to check, so that fails here instead of passing."""
    assert NOTEBOOKS, f"no notebook matches {ASSIGNMENT}/*.ipynb: the assignment's notebooks moved or are gone"
    named = set(re.findall(r"\w+\.ipynb", (ROOT / "autograder" / "release" / "student" / "README.md").read_text()))
    found = {p.name for p in NOTEBOOKS if p.is_file()}
    assert named and named <= found, f"the students' README names {sorted(named - found)}, not in {sorted(found)}"


def test_assignment_points_add_up_to_100():
    total = sum(nbformat.read(p, as_version=4).metadata.get("cs231n", {}).get("points", 0) for p in NOTEBOOKS)
    assert total == 100, f"the notebooks' regular points add up to {total}, not 100"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_source_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
