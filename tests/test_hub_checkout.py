"""On a hub, students must not read the instructor's checkout: platforms/jupyterhub/hide-checkout
(docs/jupyterhub.md, step 1) leaves them only the checkout's .venv, which their servers run.

Run on a copy laid out as the documented /opt/cs231n-a2 (the real cs231n/, assignments/ and
autograder/hidden/, a .venv), as the machine's user `nobody`: a student, or, with the staff
group, an instructor."""
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from autograder.config import ROOT

SCRIPT = ROOT / "platforms" / "jupyterhub" / "hide-checkout"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(t) for t in ("runuser", "groupadd")),
                                reason="needs root, runuser and groupadd: it reads as another user")
SECRETS = ["cs231n/layers.py", "assignments/a2/ConvolutionalNetworks.ipynb", "autograder/hidden/cases.py"]
VENV_FILE = ".venv/lib/python3/site-packages/numpy/__init__.py"
STUDENT_SETTINGS = ["platforms/jupyterhub/student/labconfig/page_config.json",
                    "platforms/jupyterhub/student/jupyter_server_config.d/cs231n-student.json",
                    "platforms/jupyterhub/nbgrader_config.py"]


@pytest.fixture
def checkout():
    tmp = Path(tempfile.mkdtemp(prefix="cs231n-hub-checkout-"))  # outside pytest's root-only folders
    tmp.chmod(0o755)
    copy = tmp / "cs231n-a2"
    for name in SECRETS + STUDENT_SETTINGS:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, copy / name)
    (copy / VENV_FILE).parent.mkdir(parents=True)
    (copy / VENV_FILE).write_text("# a package every student's server imports\n")
    group = f"cs231nstaff{secrets.token_hex(3)}"
    subprocess.run(["groupadd", group], check=True)
    try:
        yield copy, group
    finally:
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _read(path, group=None):
    """Whether `nobody` (in `group`, if given) can read the file at path."""
    argv = ["runuser", "-u", "nobody", *(["-g", group] if group else []), "--", "cat", str(path)]
    return subprocess.run(argv, capture_output=True).returncode == 0


def test_students_reach_only_the_venv_and_the_staff_read_everything(checkout):
    copy, group = checkout
    assert all(_read(copy / name) for name in SECRETS), "the copy starts readable, as a fresh clone is"
    done = subprocess.run([str(SCRIPT), str(copy), group], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in SECRETS:
        assert not _read(copy / name), f"a student can read {name}"
        assert _read(copy / name, group), f"the staff cannot read {name}"
    assert _read(copy / VENV_FILE), "a student's server cannot read the venv"
    for name in STUDENT_SETTINGS:  # jupyterhub_config.py points students' servers at them
        assert _read(copy / name), f"a student's server cannot read {name}"
    listing = subprocess.run(["runuser", "-u", "nobody", "--", "ls", str(copy)], capture_output=True)
    assert listing.returncode != 0, "a student can list the checkout"


def test_it_says_what_is_missing(checkout):
    copy, group = checkout
    no_group = subprocess.run([str(SCRIPT), str(copy), group + "x"], capture_output=True, text=True)
    assert no_group.returncode == 2 and f"groupadd {group}x" in no_group.stderr
    shutil.rmtree(copy / ".venv")
    no_venv = subprocess.run([str(SCRIPT), str(copy), group], capture_output=True, text=True)
    assert no_venv.returncode == 2 and "make install-dev" in no_venv.stderr
    assert _read(copy / SECRETS[0]), "nothing was changed"
