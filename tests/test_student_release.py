"""A student works from the release alone: `make install` builds it in a fresh venv, the local
checks run and tell a stub from a finished function, and `make submit` packs exactly the files
to hand in, refusing while a notebook has never been run."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.config import PACKAGE, Course
from autograder.release import build_release
from cs231n.submit import SubmissionError, files_to_submit, pack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("student_release")]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("student")
    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}")
    return build_release(course, out=tmp / "a2")


def make(release, *args, timeout=900):
    return subprocess.run(["make", "-C", str(release), *args], capture_output=True, text=True, timeout=timeout)


def _run_all(folder):
    """Mark every notebook as run, as saving after Restart & Run All would."""
    for path in Path(folder).glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1
        nbformat.write(nb, path)


def test_make_install_builds_the_release_and_the_checks_run(release):
    proc = make(release, "install")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list((release / "cs231n").glob("fast_layers*.so")), "the Cython extension was not built"
    stub = make(release, "check", "TASK=relu_forward")
    assert stub.returncode != 0 and "NotImplementedError" in stub.stdout
    shutil.copyfile(PACKAGE / "layers.py", release / "cs231n" / "layers.py")  # the student finishes the layers
    done = make(release, "check", "TASK=relu_forward")
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "deselected" in done.stdout  # only that task's checks ran


def test_submit_refuses_unrun_notebooks_then_packs_exactly_the_graded_files(release, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns(".venv", "*.so", "build", "*.egg-info"))
    with pytest.raises(SubmissionError, match="has never been run"):
        files_to_submit(work)
    assert not list(work.glob("*.zip"))
    _run_all(work)
    (work / "cs231n" / "optim.py").unlink()
    with pytest.raises(SubmissionError, match="missing cs231n/optim.py"):
        files_to_submit(work)
    shutil.copyfile(release / "cs231n" / "optim.py", work / "cs231n" / "optim.py")
    (work / "notes.txt").write_text("not graded")
    names = pack(work, work / "a2_submission.zip")
    with zipfile.ZipFile(work / "a2_submission.zip") as zf:
        assert sorted(zf.namelist()) == sorted(names)
    notebooks = sorted(p.name for p in release.glob("*.ipynb"))
    assert sorted(n for n in names if n.endswith(".ipynb")) == notebooks and len(notebooks) >= 4
    assert all(n.endswith(".ipynb") or (n.startswith("cs231n/") and n.endswith(".py")) for n in names)
    assert "cs231n/layers.py" in names and "notes.txt" not in names


def test_submit_command_says_why_and_writes_nothing(release, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns(".venv", "*.so", "build", "*.egg-info"))
    # run from the student's folder, so `python -m` imports the release's package found there
    proc = subprocess.run([sys.executable, "-m", "cs231n.submit"], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "never been run" in proc.stderr
    assert not list(work.glob("*.zip")) and not list(work.glob(".submission-*"))
    json.loads((work / next(iter(sorted(p.name for p in work.glob("*.ipynb"))))).read_text())  # untouched
