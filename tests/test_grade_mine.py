"""The quick parts of the self-learner's grading (the whole run is tests/test_self_study.py):
what is staged from a workspace, what the learner is told, the sandbox's self mode as an
unprivileged user, and compare's reading of one task from a file."""
import json
import os
import resource

import pytest
from as_user import NOBODY, become

from autograder.selfstudy.compare import CompareRefused, file_of, run_checks, task_source
from autograder.selfstudy.grade_mine import grade_workspace, stage, what_went_wrong
from autograder.sandbox import bubblewrap as sandbox
from autograder.results.store import GradeResult



def test_stage_takes_what_a_submission_holds_and_nothing_else(tmp_path):
    ws = tmp_path / "ws"
    (ws / "cs231n" / "classifiers" / "__pycache__").mkdir(parents=True)
    (ws / ".venv" / "lib").mkdir(parents=True)
    (ws / "Dropout.ipynb").write_text("{}")
    (ws / "cs231n" / "layers.py").write_text("x = 1\n")
    (ws / "cs231n" / "classifiers" / "cnn.py").write_text("y = 2\n")
    (ws / "cs231n" / "classifiers" / "__pycache__" / "cnn.cpython-311.py").write_text("")
    (ws / "cs231n" / "fast_layers.so").write_bytes(b"\0")
    (ws / ".venv" / "lib" / "site.py").write_text("")
    (ws / "feedback.html").write_text("<p>")
    (ws / "cs231n" / "optim.py").symlink_to("/etc/passwd")
    staged = stage(ws, tmp_path / "subs")
    assert staged == tmp_path / "subs" / "self-study"
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
        "Dropout.ipynb", "cs231n/classifiers/cnn.py", "cs231n/layers.py"]


def test_a_folder_that_is_no_workspace_is_not_graded(tmp_path):
    result, page, why = grade_workspace(tmp_path)
    assert result is None and page is None and "holds no notebooks and cs231n/ package" in why


def test_what_went_wrong_names_the_checks_that_lost_points_with_the_graders_message():
    result = GradeResult.from_json(json.dumps({"student_id": "self-study", "digest": "", "notebooks": [{"notebook": "Dropout", "grades": [
        {"name": "dropout_forward", "auto_score": 0.0, "max_score": 2.0, "needs_manual_grade": False,
         "message": "not confirmed: the judge failed dropout_forward"},
        {"name": "dropout_backward", "auto_score": 2.0, "max_score": 2.0, "needs_manual_grade": False, "message": "passed"},
        {"name": "why_dropout", "auto_score": None, "max_score": 1.0, "needs_manual_grade": True, "message": ""},
        {"name": "extra_pool_vs_torch", "auto_score": 0.0, "max_score": 3.0, "needs_manual_grade": False,
         "message": "not attempted: PyTorch is not installed"}]}],
        "functions": [{"task": "conv_forward_naive", "case": "stride2_pad1_nonsquare", "points": 0, "max_points": 1,
                    "passed": False, "message": "wrong output: relative error 0.4"},
                   {"task": "relu_forward", "case": "matrix", "points": 0.5, "max_points": 0.5, "passed": True,
                    "message": "passed"}]}))
    assert what_went_wrong(result) == [
        "notebook checks that lost points: 2",
        "  - Dropout: dropout_forward (0/2): not confirmed: the judge failed dropout_forward",
        "  - Dropout: extra_pool_vs_torch (0/3, extra credit): not attempted: PyTorch is not installed",
        "function cases (the judge) that lost points: 1",
        "  - conv_forward_naive / stride2_pad1_nonsquare: wrong output: relative error 0.4"]


def _as_nobody(code):
    """Run code() in a fork dropped to uid 65534; returns what it returned (JSON)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            become(NOBODY)
            os.write(write, json.dumps(code()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as out:
        text = out.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
def test_self_mode_uses_the_callers_user_and_counts_their_processes_in_nproc():
    def probe():
        limits = dict(sandbox.Limits(nproc=7).rlimits())
        return {"user": sandbox.student_user(), "self": sandbox.self_mode(), "mode": sandbox.isolation_mode(),
                "nproc": limits[resource.RLIMIT_NPROC][0], "mine": len(sandbox.user_processes(NOBODY)),
                "said": sandbox.describe_isolation()}

    seen = _as_nobody(probe)
    assert seen["user"] == [NOBODY, NOBODY] and seen["self"] and seen["mode"] == "self (rlimits)"
    assert seen["mine"] >= 1 and seen["nproc"] == 7 + seen["mine"]
    assert "as your own user (self mode" in seen["said"] and "no cgroup can be made here" in seen["said"]
    # as root: a user per run, the limit as given, and grade's refusal untouched
    assert not sandbox.self_mode() and dict(sandbox.Limits(nproc=7).rlimits())[resource.RLIMIT_NPROC] == (7, 7)
    assert "an unprivileged user of its own per run" in sandbox.describe_isolation()


def test_compare_reads_one_task_from_a_file_and_knows_every_task(tmp_path):
    source = tmp_path / "layers.py"
    source.write_text("import numpy as np\n\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n\n"
                      "class TwoLayerNet:\n    def loss(self):\n        return 0\n")
    assert task_source(source, "relu_forward") == "def relu_forward(x):\n    return np.maximum(x, 0), x\n"
    assert task_source(source, "TwoLayerNet").startswith("class TwoLayerNet:\n    def loss")
    assert task_source(source, "affine_forward") is None
    source.write_text("def relu_forward(x:\n")
    assert task_source(source, "relu_forward") is None  # does not parse
    assert file_of("conv_forward_naive") == "layers.py" and file_of("ThreeLayerConvNet") == "classifiers/cnn.py"
    with pytest.raises(CompareRefused, match="no task named 'conv'"):
        file_of("conv")
    with pytest.raises(CompareRefused, match="has no .venv"):
        run_checks(tmp_path, "relu_forward")
