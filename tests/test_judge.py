"""The function-level judge (autograder.judge): full marks for the reference, zero for the starter,
exactly one task lost for one wrong function, the same verdict twice, and hostile submissions
that fail only the cases they sabotage while the grader carries on."""
import ast
import os
import shutil
import socket
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from process_tree import ended

from autograder.budget import TimeBudget
from autograder.hidden.cases import CASES
from autograder.judge import JudgeError, judge_package
from autograder.judge.grader import cases_for
from cs231n.tasks import find_tasks

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the sandbox's user and namespaces need root")


def copy_reference(parent, appended=None, replace=None):
    """A copy of the reference cs231n in parent/cs231n; appended: {file: code added at its end};
    replace: {file: (old, new)} with old found exactly once."""
    shutil.copytree(ROOT / "cs231n", parent / "cs231n",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    for name, code in (appended or {}).items():
        path = parent / "cs231n" / name
        path.write_text(path.read_text() + "\n" + textwrap.dedent(code))
    for name, (old, new) in (replace or {}).items():
        path = parent / "cs231n" / name
        source = path.read_text()
        assert source.count(old) == 1, f"{old!r} is not once in {name}"
        path.write_text(source.replace(old, new))
    return parent


def by_task(results):
    tasks = {}
    for r in results:
        tasks.setdefault(r.task, []).append(r)
    return tasks


def hidden_cases():
    """(task, case, points) of every hidden case of a task of cs231n, in the order of find_tasks
    (the order judge_package returns them in), read from the cases themselves."""
    return [(c.task, c.name, c.points) for t in find_tasks() for c in CASES if c.task == t.name]


def assert_only_failing(results, failing):
    """Every case of the tasks in `failing` fails, every other case passes."""
    for r in results:
        if r.task in failing:
            assert not r.passed and r.points == 0, r
        else:
            assert r.passed and r.points == r.max_points, r


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------
def test_every_task_has_cases_and_points():
    cases = hidden_cases()
    tasks = [t.name for t in find_tasks()]
    assert set(tasks) <= {task for task, _, _ in cases}
    assert [(c.task, c.name) for c in cases_for()] == [(task, name) for task, name, _ in cases]
    assert len({(task, name) for task, name, _ in cases}) == len(cases)
    assert all(points > 0 for _, _, points in cases)
    points = {t: sum(p for task, _, p in cases if task == t) for t in tasks}
    assert points["conv_backward_naive"] > points["relu_forward"]
    assert points["batchnorm_backward"] > points["relu_backward"]


def test_a_task_without_cases_is_an_error(tmp_path):
    ref = copy_reference(tmp_path, appended={"layers.py": """
        def leaky_relu_forward(x):
            out = None
            ### BEGIN SOLUTION
            out = np.where(x > 0, x, 0.01 * x)
            ### END SOLUTION
            return out
        """})
    with pytest.raises(JudgeError, match="leaky_relu_forward"):
        cases_for(ref)
    with pytest.raises(JudgeError, match="leaky_relu_forward"):
        judge_package(ref, reference_pkg_dir=ref)


# --------------------------------------------------------------------------------------------
# Reference, starter, one wrong function
# --------------------------------------------------------------------------------------------
def test_the_reference_scores_full_marks():
    results = judge_package(ROOT)
    assert [(r.task, r.case, r.max_points) for r in results] == hidden_cases()
    assert all(r.passed and r.points == r.max_points for r in results), [r for r in results if not r.passed]


def test_the_starter_scores_zero_and_says_not_implemented(tmp_path):
    from autograder.release.stubs import strip_package

    strip_package(ROOT / "cs231n", tmp_path / "cs231n")
    results = judge_package(tmp_path)
    assert len(results) == len(hidden_cases())
    for r in results:
        assert not r.passed and r.points == 0
        assert "NotImplementedError" in r.message, r


@pytest.fixture(scope="module")
def one_wrong(tmp_path_factory):
    """batchnorm_backward's dx off by 1%: judged twice."""
    pkg = copy_reference(tmp_path_factory.mktemp("wrong"), appended={"layers.py": """
        _batchnorm_backward = batchnorm_backward
        def batchnorm_backward(dout, cache):
            dx, dgamma, dbeta = _batchnorm_backward(dout, cache)
            return dx * 1.01, dgamma, dbeta
        """})
    return judge_package(pkg), judge_package(pkg)


def test_one_wrong_function_loses_exactly_its_task(one_wrong):
    results, _ = one_wrong
    assert_only_failing(results, {"batchnorm_backward"})
    lost = sum(r.max_points - r.points for r in results)
    assert lost == pytest.approx(sum(p for t, _, p in hidden_cases() if t == "batchnorm_backward"))
    message = by_task(results)["batchnorm_backward"][0].message
    assert message.startswith("relative error") and "in dx" in message and "x (20, 6)" in message


def test_judging_twice_gives_the_same_results(one_wrong):
    first, second = one_wrong
    assert first == second


# --------------------------------------------------------------------------------------------
# Hostile submissions
# --------------------------------------------------------------------------------------------
SECRET = "SECRET-GRADEBOOK-4f1d"
ESCAPEE = "escapee4f1d"

# task -> code appended to a file of the reference copy; each sabotages only its own task.
HOSTILE = {
    # a wrong layer, with numpy's comparisons patched at import to say "equal"
    "svm_loss": ("layers.py", """
        np.allclose = lambda *a, **k: True
        np.array_equal = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        np.testing.assert_array_equal = lambda *a, **k: None
        _svm_loss = svm_loss
        def svm_loss(x, y):
            loss, dx = _svm_loss(x, y)
            return loss, dx + 0.1
        """),
    # right values in the wrong wrappers
    "sgd_momentum": ("optim.py", """
        class _Liar(np.ndarray):
            def __eq__(self, other):
                return True
        _sgd_momentum = sgd_momentum
        def sgd_momentum(w, dw, config=None):
            next_w, config = _sgd_momentum(w, dw, config)
            return next_w.view(_Liar), config
        """),
    "nesterov": ("optim.py", """
        class _Equal:
            shape, dtype = (4, 5), np.dtype(np.float64)
            def __eq__(self, other):
                return True
            def __array__(self, dtype=None, copy=None):
                return np.zeros(self.shape)
        _nesterov = nesterov
        def nesterov(w, dw, config=None):
            return _Equal(), _nesterov(w, dw, config)[1]
        """),
    "adagrad": ("optim.py", """
        _adagrad = adagrad
        def adagrad(w, dw, config=None):
            next_w, config = _adagrad(w, dw, config)
            return next_w.tolist(), config
        """),
    "rmsprop": ("optim.py", """
        _rmsprop = rmsprop
        def rmsprop(w, dw, config=None):
            next_w, config = _rmsprop(w, dw, config)
            return next_w.astype(object), config
        """),
    "adam": ("optim.py", """
        _adam = adam
        def adam(w, dw, config=None):
            next_w, config = _adam(w, dw, config)
            return np.full_like(next_w, np.nan), config
        """),
    "adadelta": ("optim.py", """
        _adadelta = adadelta
        def adadelta(w, dw, config=None):
            next_w, config = _adadelta(w, dw, config)
            return next_w.astype(np.float32), config
        """),
    # writes garbage into every descriptor it can find, the channel among them
    "dropout_forward": ("layers.py", """
        _dropout_forward = dropout_forward
        def dropout_forward(x, dropout_param):
            import os
            for fd in range(3, 64):
                try:
                    os.write(fd, b"garbage" * 1000)
                except OSError:
                    pass
            return _dropout_forward(x, dropout_param)
        """),
    # memory bomb: 4 GiB of ones, refused at once under the 1 GiB address-space limit
    "batchnorm_backward": ("layers.py", """
        def batchnorm_backward(dout, cache):
            return np.ones(1 << 29), None, None
        """),
    # an infinite loop deaf to SIGINT/SIGTERM; as root (where a PID namespace can catch it)
    # also with a forked child that leaves the session
    "spatial_batchnorm_backward": ("layers.py", f"""
        def spatial_batchnorm_backward(dout, cache):
            import os, signal
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            if {IS_ROOT} and os.fork() == 0:
                import ctypes
                os.setsid()
                ctypes.CDLL(None).prctl(15, b"{ESCAPEE}", 0, 0, 0)  # PR_SET_NAME: /proc is read-only inside
            while True:
                pass
        """),
}
QUIET = {
    # 100 MB printed every way there is, then the right answer: judged normally
    "dropout_backward": ("layers.py", """
        _dropout_backward = dropout_backward
        def dropout_backward(dout, cache):
            import os, sys
            print("x" * 50_000_000)
            sys.__stdout__.write("y" * 25_000_000)
            os.write(1, b"z" * 25_000_000)
            os.write(2, b"w" * 1_000_000)
            return _dropout_backward(dout, cache)
        """),
}


def _sabotage_needing_root(secret_file, port):
    """Reading a root-only file, connecting to the grader, and reading the reference."""
    return {
        "TwoLayerNet": ("classifiers/fc_net.py", f"""
            class TwoLayerNet(TwoLayerNet):
                def __init__(self, *args, **kwargs):
                    with open({str(secret_file)!r}) as f:
                        raise ValueError(f.read())
            """),
        "FullyConnectedNet": ("classifiers/fc_net.py", f"""
            class FullyConnectedNet(FullyConnectedNet):
                def __init__(self, *args, **kwargs):
                    import socket
                    with socket.create_connection(("127.0.0.1", {port}), timeout=2) as s:
                        s.sendall(b"{SECRET}")
                    super().__init__(*args, **kwargs)
            """),
        "ThreeLayerConvNet": ("classifiers/cnn.py", f"""
            class ThreeLayerConvNet(ThreeLayerConvNet):
                def __init__(self, *args, **kwargs):
                    import importlib.util
                    path = {str(ROOT / 'cs231n' / 'classifiers' / 'cnn.py')!r}
                    spec = importlib.util.spec_from_file_location("reference", path)
                    spec.loader.exec_module(importlib.util.module_from_spec(spec))
                    super().__init__(*args, **kwargs)
            """),
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One submission carrying every sabotage above, judged with 3 s per case."""
    sabotage = {**HOSTILE, **QUIET}
    listener = secret_dir = None
    if IS_ROOT:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.settimeout(0.5)
        # a folder the sandbox leaves visible (not under /tmp, the instructor's tree or /root)
        visible = next(p for p in ("/srv", "/opt", "/var/lib", "/") if os.path.isdir(p))
        secret_dir = Path(tempfile.mkdtemp(dir=visible, prefix="cs231n-judge-test-"))
        os.chmod(secret_dir, 0o755)
        secret_file = secret_dir / "gradebook.db"
        secret_file.write_text(SECRET)
        os.chmod(secret_file, 0o600)
        sabotage.update(_sabotage_needing_root(secret_file, listener.getsockname()[1]))
    appended = {}
    for (name, code) in sabotage.values():
        appended[name] = appended.get(name, "") + textwrap.dedent(code) + "\n"
    pkg = copy_reference(tmp_path_factory.mktemp("hostile"), appended=appended)
    start = time.monotonic()
    results = judge_package(pkg, budget=TimeBudget(judge_case=3), memory_mb=1024)
    elapsed = time.monotonic() - start
    connected = None
    if listener is not None:
        try:
            connected = listener.accept()
        except OSError:
            connected = None
        listener.close()
        shutil.rmtree(secret_dir)
    yield results, set(sabotage), elapsed, connected


# tasks that run another task's student code fail with it: the residual block and the small
# ResNet run the student's spatial batchnorm
BUILT_ON = {"residual_block_backward": "spatial_batchnorm_backward", "ResNet": "spatial_batchnorm_backward"}


def test_hostile_submission_fails_only_what_it_sabotages(hostile):
    results, sabotaged, elapsed, _ = hostile
    failing = sabotaged - set(QUIET)
    assert_only_failing(results, failing | {t for t, base in BUILT_ON.items() if base in failing})
    assert elapsed < 60


def test_patching_numpy_does_not_pass_a_wrong_layer(hostile):
    message = by_task(hostile[0])["svm_loss"][0].message
    assert message.startswith("relative error") and "in dx" in message


@pytest.mark.parametrize("task, words", [
    ("sgd_momentum", "_Liar (a subclass of numpy.ndarray), expected a numpy ndarray"),
    ("nesterov", "is a _Equal, expected a numpy ndarray"),
    ("adagrad", "is a list, expected a numpy ndarray"),
    ("rmsprop", "dtype object"),
    ("adam", "nan"),
    ("adadelta", "returned float32, expected float64"),
    ("dropout_forward", "cannot read"),
])
def test_lying_outputs_fail_with_a_message(hostile, task, words):
    for r in by_task(hostile[0])[task]:
        assert words in r.message, r


def test_a_memory_bomb_fails_its_case(hostile):
    for r in by_task(hostile[0])["batchnorm_backward"]:
        assert "MemoryError" in r.message or "killed" in r.message, r


def test_a_deaf_infinite_loop_times_out(hostile):
    for r in by_task(hostile[0])["spatial_batchnorm_backward"]:
        assert r.message.startswith("timed out after 3 s"), r


@pytest.mark.skipif(not IS_ROOT, reason="finding the escapee among every process of the machine needs the "
                    "judge's own user and PID namespace, which need root (run as root to check this)")
def test_a_deaf_infinite_loop_leaves_nothing_behind(hostile):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        names = []
        for comm in Path("/proc").glob("[0-9]*/comm"):
            try:
                names.append(comm.read_text().strip())
            except OSError:
                pass
        if ESCAPEE not in names:
            break
        time.sleep(0.2)
    assert ESCAPEE not in names, "a process forked by the submission outlived its worker"


def test_printing_100_mb_changes_nothing(hostile):
    assert all(r.passed for r in by_task(hostile[0])["dropout_backward"])


@needs_root
def test_the_worker_cannot_see_files_outside_its_binds(hostile):
    # a root-only file in a world-readable folder of the host: not merely unreadable, absent
    for r in by_task(hostile[0])["TwoLayerNet"]:
        assert "FileNotFoundError" in r.message, r
    assert not any(SECRET in r.message for r in hostile[0])


@needs_root
def test_the_worker_has_no_network(hostile):
    results, _, _, connected = hostile
    assert connected is None, "the submission reached the grader's listener"
    for r in by_task(results)["FullyConnectedNet"]:
        assert "ConnectionRefusedError" in r.message or "OSError" in r.message, r


@needs_root
def test_the_worker_cannot_see_the_reference(hostile):
    for r in by_task(hostile[0])["ThreeLayerConvNet"]:
        assert "FileNotFoundError" in r.message, r


@pytest.mark.parametrize("code", ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n"])
def test_exiting_at_import_fails_every_case_quickly(tmp_path, code):
    pkg = copy_reference(tmp_path)
    init = pkg / "cs231n" / "__init__.py"
    init.write_text(init.read_text() + code)
    start = time.monotonic()
    results = judge_package(pkg)
    assert time.monotonic() - start < 15
    assert len(results) == len(hidden_cases())
    for r in results:
        assert not r.passed
        assert "SystemExit" in r.message or "exited with code 0" in r.message, r


def test_a_submission_without_a_package_fails_every_case(tmp_path):
    results = judge_package(tmp_path)
    assert results and all(not r.passed and "no cs231n package" in r.message for r in results)


# --------------------------------------------------------------------------------------------
# The channel, on its own
# --------------------------------------------------------------------------------------------
def _npz(**arrays):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_the_grader_decodes_plain_arrays_only():
    import io

    from autograder.judge import wire

    decoded = wire.decode_untrusted(_npz(a=np.arange(6.0).reshape(2, 3), s=np.asarray("ok")),
                                    1 << 20)
    assert decoded["a"].shape == (2, 3) and str(decoded["s"]) == "ok"
    for bad in [_npz(a=np.array([object()], dtype=object)),
                _npz(a=np.zeros(3, dtype=[("x", "f8")])),
                b"not a zip at all"]:
        with pytest.raises(wire.ChannelError):
            wire.decode_untrusted(bad, 1 << 20)
    compressed = io.BytesIO()
    np.savez_compressed(compressed, a=np.zeros(10 ** 6))
    with pytest.raises(wire.ChannelError):
        wire.decode_untrusted(compressed.getvalue(), 1 << 30)
    npy = io.BytesIO()  # a header that claims far more than the member holds
    np.lib.format.write_array_header_1_0(npy, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10 ** 10,)})
    npy.write(bytes(32))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.npy", npy.getvalue())
    with pytest.raises(wire.ChannelError, match="bytes for shape"):
        wire.decode_untrusted(archive.getvalue(), 1 << 20)
    with pytest.raises(wire.ChannelError):
        wire.decode_untrusted(_npz(a=np.zeros(10 ** 5)), 1000)


# --------------------------------------------------------------------------------------------
# The sandbox, on its own (notebook execution reuses it)
# --------------------------------------------------------------------------------------------
PROBE_SANDBOX = """
import os, socket, sys
print(os.getuid(), os.getgid(), os.getpid())
print(sorted(os.listdir("/tmp")))
print(os.path.exists(sys.argv[1]))
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=1)
    print("connected")
except OSError as exc:
    print("OSError")
try:
    open("here.txt", "w").write("ok")
except OSError as exc:
    print(type(exc).__name__)
open("/tmp/mine.txt", "w").write("ok")
print(open("/tmp/mine.txt").read())
"""


@needs_root
def test_the_sandbox_sees_only_its_binds_as_the_student_user(tmp_path):
    import subprocess
    import sys

    from autograder.sandbox import bubblewrap as sandbox

    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o755)
    box = sandbox.Sandbox(cwd=str(work), ro=(str(work),), uid=sandbox.student_user()[0],
                          gid=sandbox.student_user()[1])
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(1)
    proc = sandbox.sandboxed_popen(
        [os.path.realpath(sys.executable), "-I", "-S", "-c", PROBE_SANDBOX, str(ROOT / "cs231n" / "layers.py"),
         str(host.getsockname()[1])], box, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    host.close()
    assert proc.returncode == 0, err.decode()
    ids, tmp_listing, sees_reference, network, wrote, tmp_wrote = out.decode().split("\n")[:6]
    uid, gid, pid = map(int, ids.split())
    assert (uid, gid) == sandbox.student_user() and uid >= sandbox.UID_BASE
    assert pid == 2  # its own PID namespace, under bwrap's reaper
    # a fresh /tmp: nothing of the machine's, only the way to its binds (its own folder, the
    # venv's site-packages) when they lie there
    binds = (work, Path(sandbox.site_packages()).resolve())
    assert set(ast.literal_eval(tmp_listing)) <= {p.relative_to("/tmp").parts[0]
                                                   for p in binds if p.is_relative_to("/tmp")}
    assert sees_reference == "False"
    assert network == "OSError"  # the host's 127.0.0.1 is not its 127.0.0.1
    assert wrote == "OSError"  # its folder is bound read-only
    assert tmp_wrote == "ok"


def test_without_bwrap_the_judge_refuses_and_says_how_to_get_it(monkeypatch):
    from autograder.sandbox import bubblewrap as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(sandbox.BwrapMissing, match="apt-get install bubblewrap"):
        judge_package(ROOT, tasks=["relu_forward"])


def test_the_reference_worker_dies_with_the_process_that_started_it(tmp_path):
    """The trusted worker (the reference package's) is killed when its starter is killed -9,
    even while it computes (a closed stdin would only stop it once its case was done)."""
    import signal
    import subprocess
    import sys

    from services import wait_until

    starter = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from autograder.sandbox import bubblewrap as sandbox
        proc = sandbox.trusted_popen([sys.executable, "-c", "while True: pass"], {str(tmp_path)!r},
                                     sandbox.Limits(cpu_seconds=600))
        print(proc.pid, flush=True)
        time.sleep(600)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    worker = int(starter.stdout.readline())
    assert Path(f"/proc/{worker}").exists()
    starter.send_signal(signal.SIGKILL)
    starter.wait()

    try:
        wait_until(lambda: ended(worker), 30, "the reference worker outlived the process that started it")
    finally:
        if not ended(worker):
            os.kill(worker, signal.SIGKILL)
