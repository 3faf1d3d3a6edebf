"""PyTorch stays optional: one pin for it (pyproject.toml's extra, both Makefiles); without it the
PyTorch notebook stops at its first cell saying how to get it, a release still builds, and
grading marks the notebook "not attempted" (autograder/notebooks/optional.py) instead of failing it.

"Without PyTorch" is simulated, in the processes started here only, by tests/without_torch on
PYTHONPATH: its sitecustomize makes `import torch` raise ModuleNotFoundError. The grader decides
from its own interpreter, which is the notebook kernels' too (same venv); the kernels themselves
get no PYTHONPATH from the grader, which is why the notebook's own behaviour without torch is
tested separately, in a kernel started with the shim."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from course_fixtures import make_toy_source

from autograder.config import PACKAGE, ROOT
from autograder.notebooks.optional import OPTIONAL_NOTEBOOKS, SetAside, importable, mark_not_attempted, set_aside_unrunnable

WITHOUT_TORCH = Path(__file__).resolve().parent / "without_torch"
NOTEBOOK = ROOT / "assignments" / "a2" / "PyTorch.ipynb"
PIN = "torch==2.13.0"


def _env_without_torch(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("CS231N_DB_URL",)}
    env["PYTHONPATH"] = os.pathsep.join([str(WITHOUT_TORCH), str(ROOT)])
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# One pin
# --------------------------------------------------------------------------------------------
def test_one_pin_in_pyproject_and_both_makefiles():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"] == {"torch": [PIN]}
    assert not any("torch" in d for d in project["dependencies"]), "PyTorch must stay optional"
    assert re.search(r"^TORCH\s*:=\s*" + re.escape(PIN) + r"\s*$", (ROOT / "Makefile").read_text(), re.M)
    assert f'"{PIN}"' in (ROOT / "autograder" / "release" / "student" / "Makefile").read_text()
    # what `make install-dev` (and so `make test`) runs, every step made again, without running it
    dry = subprocess.run(["make", "-C", str(ROOT), "--dry-run", "--always-make", "install-dev"],
                         capture_output=True, text=True, timeout=120)
    assert any(" -m pip " in line and f'"{PIN}"' in line for line in dry.stdout.splitlines()), (
        "make test (through install-dev) must install PyTorch, or CI cannot run the PyTorch notebook:\n" + dry.stdout)


def test_the_notebook_is_extra_credit_only():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    graded = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and all(m["grade_id"].startswith("extra_") for m in graded)
    assert nb.metadata.cs231n == {"points": 0, "extra_credit": sum(m["points"] for m in graded)}


def test_automatic_points_only_where_judge_tasks_confirm_them():
    from cs231n.tasks import TASKS

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):  # autograded test cell
            tasks = cell.metadata.get("cs231n", {}).get("tasks")
            if meta["points"] == 0:  # numpy layers re-checked against PyTorch: a check, no points
                assert tasks == [], f"{meta['grade_id']}: a check worth nothing names no tasks"
                continue
            assert tasks and set(tasks) <= set(TASKS), f"{meta['grade_id']}: names tasks {tasks}"
            assert all(re.search(rf"\b{t}\b", cell.source) for t in tasks)


# --------------------------------------------------------------------------------------------
# autograder/notebooks/optional.py
# --------------------------------------------------------------------------------------------
def test_importable_sees_what_the_interpreter_can_import():
    assert importable("json") and not importable("no_such_module_for_cs231n")
    probe = "from autograder.notebooks.optional import importable; print(importable('torch'), importable('numpy'))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_env_without_torch(),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"], "the without_torch shim must hide torch and nothing else"


def test_set_aside_removes_only_optional_notebooks_whose_module_is_missing(tmp_path):
    for name in ("PyTorch", "Dropout"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert set_aside_unrunnable(tmp_path, importable=lambda module: True) == []
    assert (tmp_path / "PyTorch.ipynb").exists()
    asked = []
    set_aside = set_aside_unrunnable(tmp_path, importable=lambda module: asked.append(module) or False)
    assert asked == list(OPTIONAL_NOTEBOOKS.values())
    assert [s.notebook for s in set_aside] == ["PyTorch"] and "torch is not installed" in set_aside[0].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dropout.ipynb"]
    assert set_aside_unrunnable(tmp_path, importable=lambda module: False) == []  # nothing left to set aside


def test_mark_not_attempted_zeroes_only_that_notebook():
    notebooks = [
        {"notebook": "PyTorch", "grades": [
            {"name": "extra_conv_vs_torch", "auto_score": None, "max_score": 2.0, "needs_manual_grade": False,
             "message": ""},
            {"name": "extra_three_ways", "auto_score": None, "max_score": 2.0, "needs_manual_grade": True,
             "message": ""}]},
        {"notebook": "Dropout", "grades": [
            {"name": "dropout_forward", "auto_score": 3.0, "max_score": 3.0, "needs_manual_grade": False,
             "message": ""}]}]
    mark_not_attempted(notebooks, [SetAside("PyTorch", "not attempted: torch is not installed")])
    assert notebooks[0]["not_attempted"] == "not attempted: torch is not installed"
    assert all(g["auto_score"] == 0.0 and not g["needs_manual_grade"] and g["message"].startswith("not attempted")
               for g in notebooks[0]["grades"])
    assert "not_attempted" not in notebooks[1] and notebooks[1]["grades"][0]["auto_score"] == 3.0


# --------------------------------------------------------------------------------------------
# The notebook, a release and a grading run without PyTorch
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_without_torch_the_notebook_stops_at_its_first_cell_saying_how_to_get_it():
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(WITHOUT_TORCH), str(ROOT)])
    try:
        with pytest.raises(CellExecutionError) as info:
            NotebookClient(nb, timeout=120, kernel_name="python3",
                           resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
    assert info.value.ename == "ModuleNotFoundError"
    assert "make install-torch" in info.value.evalue and PIN in info.value.evalue
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].get("execution_count") and not any(c.get("execution_count") for c in code[1:])


def _copy_submission(folder, notebooks):
    folder.mkdir(parents=True)
    for nb in notebooks:
        shutil.copy(nb, folder / nb.name)
    shutil.copytree(PACKAGE, folder / "cs231n", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c"))


def _release_and_grade(tmp_path, env):
    """A course of the toy notebook and PyTorch.ipynb: release it, grade one reference submission
    through the CLI with `env`; returns (released PyTorch notebook, {notebook: result entry})."""
    src = make_toy_source(tmp_path / "src")
    shutil.copy(NOTEBOOK, src / "a2" / NOTEBOOK.name)
    env = {**env, "CS231N_COURSE_DIR": str(tmp_path / "course")}

    def autograder(*args):
        proc = subprocess.run([sys.executable, "-m", "autograder", "--source", str(src), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    autograder("release", "--out", str(tmp_path / "handout"))
    released = nbformat.read(tmp_path / "handout" / NOTEBOOK.name, as_version=4)
    _copy_submission(tmp_path / "subs" / "ivy", [src / "a2" / "Toy.ipynb", src / "a2" / NOTEBOOK.name])
    autograder("grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--workers", "1")
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [r["student_id"] for r in rows] == ["ivy"]
    result = json.loads((tmp_path / "out" / "results" / "ivy.json").read_text())
    by_name = {nb["notebook"]: nb for nb in result["notebooks"]}
    toy = {g["name"]: g["auto_score"] for g in by_name["Toy"]["grades"]}
    # test_double names no student task, so it keeps no points (autograder.results.evidence)
    assert toy["test_double"] == 0 and toy["test_relu"] == 3, f"the toy notebook was not graded as usual: {toy}"
    return released, by_name


def _points(notebook):
    return {g["name"]: (g["auto_score"], g["needs_manual_grade"]) for g in notebook["grades"]}


@pytest.mark.slow
def test_without_torch_a_release_builds_and_grading_marks_the_notebook_not_attempted(tmp_path):
    released, graded = _release_and_grade(tmp_path, _env_without_torch())
    assert "make install-torch" in released.cells[1].source
    pytorch = graded["PyTorch"]
    assert "torch is not installed" in pytorch["not_attempted"]
    assert set(_points(pytorch).values()) == {(0.0, False)} and len(pytorch["grades"]) == 9


@pytest.mark.slow
def test_with_torch_the_reference_notebook_earns_its_automatic_points_in_the_sandbox(tmp_path):
    pytest.importorskip("torch", reason="make install-torch (part of make test) installs it")
    env = {k: v for k, v in os.environ.items() if k not in ("CS231N_DB_URL", "PYTHONPATH")}
    _, graded = _release_and_grade(tmp_path, env)
    pytorch = graded["PyTorch"]
    assert "not_attempted" not in pytorch
    points = _points(pytorch)
    automatic = {k: v for k, v in points.items() if not v[1]}
    # numpy layers re-checked against PyTorch earn nothing here (their notebooks grade them); the
    # PyTorch ResNet's counts earn their 2 points, confirmed by the judge's verdict on the counters
    assert automatic == {"extra_conv_vs_torch": (0.0, False), "extra_pool_vs_torch": (0.0, False),
                         "extra_batchnorm_vs_torch": (0.0, False), "extra_torch_resnet_counts": (2.0, False)}, points
    assert {k for k, v in points.items() if v[1]} == {"extra_three_ways", "extra_torch_training", "extra_best_model",
                                                       "extra_best_model_description", "extra_torch_resnet"}


# --------------------------------------------------------------------------------------------
# The residual block's PyTorch comparison (its numpy block is written on another branch: this
# test brings its own, built from the reference layers, to the API the course agreed on)
# --------------------------------------------------------------------------------------------
def _local_residual_block(dx_scale=1.0):
    """residual_block_forward/backward from cs231n.layers, for the notebook cell to compare;
    dx_scale != 1 makes the backward pass wrong."""
    from types import SimpleNamespace

    from cs231n.layers import (conv_backward_naive, conv_forward_naive, relu_backward, relu_forward,
                               spatial_batchnorm_backward, spatial_batchnorm_forward)

    def conv_bn(x, p, w, b, g, beta, bn_param, stride, pad):
        h, conv_cache = conv_forward_naive(x, p[w], p[b], {"stride": stride, "pad": pad})
        out, bn_cache = spatial_batchnorm_forward(h, p[g], p[beta], bn_param)
        return out, (conv_cache, bn_cache, (w, b, g, beta))

    def conv_bn_back(dout, cache, grads):
        conv_cache, bn_cache, (w, b, g, beta) = cache
        dh, grads[g], grads[beta] = spatial_batchnorm_backward(dout, bn_cache)
        dx, grads[w], grads[b] = conv_backward_naive(dh, conv_cache)
        return dx

    def forward(x, params, bn_params, stride=1):
        h, c1 = conv_bn(x, params, "W1", "b1", "gamma1", "beta1", bn_params[0], stride, 1)
        h, r1 = relu_forward(h)
        h, c2 = conv_bn(h, params, "W2", "b2", "gamma2", "beta2", bn_params[1], 1, 1)
        shortcut, cp = x, None
        if "Wp" in params:
            shortcut, cp = conv_bn(x, params, "Wp", "bp", "gammap", "betap", bn_params[2], stride, 0)
        out, r2 = relu_forward(h + shortcut)
        return out, (c1, r1, c2, cp, r2)

    def backward(dout, cache):
        c1, r1, c2, cp, r2 = cache
        grads = {}
        ds = relu_backward(dout, r2)
        dx = conv_bn_back(relu_backward(conv_bn_back(ds, c2, grads), r1), c1, grads)
        dx = dx + (conv_bn_back(ds, cp, grads) if cp else ds)
        return dx_scale * dx, grads

    return SimpleNamespace(residual_block_forward=forward, residual_block_backward=backward)


def _run_residual_cell(layer_utils):
    """Run the notebook's helper and residual cells with `layer_utils`; returns what they printed."""
    import contextlib
    import io

    import numpy as np
    import torch
    import torch.nn.functional as F

    from cs231n.checks import check_close, check_value

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    namespace = {"np": np, "torch": torch, "F": F, "check_close": check_close, "check_value": check_value,
                 "layer_utils": layer_utils}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for grade_id in ("torch_reference_helper", "residual_block_torch", "residual_vs_torch"):
            exec(compile(cells[grade_id], grade_id, "exec"), namespace)
    return printed.getvalue()


def test_the_residual_block_is_compared_with_pytorch():
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from cs231n.checks import CheckFailed

    printed = _run_residual_cell(_local_residual_block())
    for label in ("C=4 F=4 stride 1", "C=3 F=5 stride 2"):
        assert f"residual block {label} out vs PyTorch" in printed
    assert "dWp vs autograd" in printed and "dgammap vs autograd" in printed
    with pytest.raises(CheckFailed, match="dx vs autograd"):
        _run_residual_cell(_local_residual_block(dx_scale=1.01))
    with pytest.raises(AttributeError, match="residual_block_forward"):  # no hedge: the block is a task
        _run_residual_cell(SimpleNamespace())
