"""`make check TASK=...` blames the right task: run as a student would (pytest on the public
checks, in a copy of the package), a bug in every forward pass leaves every backward task's checks
green; a bug in one gradient names that gradient (`db`) without the helpers' frames; a stub says
which function in which file to write."""
import re
import shutil
import subprocess
import sys

import pytest

from autograder.config import PACKAGE, ROOT
from helpers import BACKWARD

PUBLIC = ["conftest.py", "helpers.py", "test_layers.py", "test_backward_stored.py"]
FORWARDS = sorted({forward for _, forward, make, _ in BACKWARD.values() if make} | {"dropout_forward"})


def _student(tmp_path, appended):
    """A student's folder: the reference package with `appended` at the end of layers.py."""
    shutil.copytree(PACKAGE, tmp_path / "cs231n", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    (tmp_path / "tests").mkdir()
    for name in PUBLIC:
        shutil.copyfile(ROOT / "tests" / name, tmp_path / "tests" / name)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "cs231n" / "layers.py", "a") as layers:
        layers.write(appended)
    return tmp_path


def _check(folder, expression):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", expression, "tests"],
                          cwd=folder, capture_output=True, text=True, timeout=600)


def test_a_bug_in_every_forward_pass_leaves_every_backward_task_green(tmp_path):
    # each forward returns a wrong output (its cache untouched), as a slip in the arithmetic would
    wrong = "".join(f"\n\n_right_{name} = {name}\n\n\ndef {name}(*args):\n"
                    f"    out, cache = _right_{name}(*args)\n    return out * 1.5 + 0.25, cache\n" for name in FORWARDS)
    folder = _student(tmp_path, wrong)
    forwards = _check(folder, " or ".join(FORWARDS))
    assert forwards.returncode == 1, "the bug is not a bug: " + forwards.stdout[-2000:]
    backwards = _check(folder, " or ".join(BACKWARD))
    assert backwards.returncode == 0, backwards.stdout[-4000:]
    assert "differentiates your affine_forward, which does not give the stored output yet" in _check(
        folder, "affine_backward").stdout + _skips(folder, "affine_backward")


def _skips(folder, task):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", task, "tests"],
                          cwd=folder, capture_output=True, text=True, timeout=600).stdout


@pytest.mark.parametrize("task, wrong, named", [
    ("affine_backward", "dx, dw, db * 2", "affine_backward db"),
    ("conv_backward_naive", "dx, dw * 0.5, db", "conv_backward_naive dw"),
    ("batchnorm_backward", "dx, dgamma, dbeta + 1", "batchnorm_backward dbeta"),
])
def test_a_wrong_gradient_is_named_without_the_helpers_frames(tmp_path, task, wrong, named):
    folder = _student(tmp_path, f"\n\n_right = {task}\n\n\ndef {task}(dout, cache):\n"
                                f"    dx, {'dgamma, dbeta' if 'norm' in task else 'dw, db'} = _right(dout, cache)\n"
                                f"    return {wrong}\n")
    proc = _check(folder, task)
    assert proc.returncode == 1
    assert f"{named}: relative error" in proc.stdout, proc.stdout[-3000:]
    assert "input 2" not in proc.stdout and "input 1" not in proc.stdout
    assert not re.search(r"helpers\.py:\d+: (in |AssertionError)", proc.stdout), proc.stdout[-3000:]  # no frame of it
    if task == "batchnorm_backward":  # the alternative backward is checked without the student's full one
        alt = _check(folder, "batchnorm_backward_alt")
        assert alt.returncode == 0, alt.stdout[-3000:]


def test_a_stub_says_which_function_in_which_file(tmp_path):
    folder = _student(tmp_path, "\n\ndef relu_forward(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    proc = _check(folder, "relu_forward")
    assert proc.returncode == 1
    assert "relu_forward in cs231n/layers.py is not written yet: fill in the part marked '# YOUR CODE HERE'" in proc.stdout, \
        proc.stdout[-3000:]
    # its backward task does not need it: the cache is (x), as the given code makes it
    assert _check(folder, "relu_backward").returncode == 0
