"""The notebook checks students see, and the two run modes."""
import numpy as np
import pytest

from cs231n import runmode
from cs231n.checks import CheckFailed, check_close, check_gradient, check_shape, check_value


def test_check_close_prints_error_and_magnitude(capsys):
    assert check_close("out", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-10]), tol=1e-8) is None
    out = capsys.readouterr().out
    assert out.startswith("out: relative error") and "(expect < 1e-08) ok" in out


def test_check_close_failure_carries_the_hint():
    with pytest.raises(CheckFailed, match=r"relative error 3\.3e-01, expected below 1e-07\n  Hint: reshape"):
        check_close("out", np.array([1.0]), np.array([2.0]), hint="reshape x first")


@pytest.mark.parametrize("actual, fragment", [(None, "did not compute"), (np.zeros(3), "shape (3,)"),
                                              (np.array([np.nan, 0.0]), "nan or inf")])
def test_check_close_names_the_usual_failures(actual, fragment):
    with pytest.raises(CheckFailed) as info:
        check_close("x", actual, np.zeros(2))
    assert fragment in str(info.value)


def test_check_gradient_catches_a_wrong_gradient(rng):
    x = rng.standard_normal(5)
    check_gradient("d(x^2)", lambda z: np.sum(z ** 2), x, 2 * x)
    check_gradient("d(3x)", lambda z: 3 * z, x, 3 * np.ones(5), dout=np.ones(5))
    with pytest.raises(CheckFailed):
        check_gradient("d(x^2)", lambda z: np.sum(z ** 2), x, x)


def test_check_shape_and_value():
    check_shape("w", np.zeros((2, 3)), (2, 3))
    with pytest.raises(CheckFailed, match=r"shape \(3, 2\), expected \(2, 3\)"):
        check_shape("w", np.zeros((3, 2)), (2, 3))
    check_value("loss", 2.30, np.log(10), 0.01)
    with pytest.raises(CheckFailed, match="away from"):
        check_value("loss", 3.0, np.log(10), 0.01)


@pytest.mark.parametrize("env, fast", [({}, False), ({"CS231N_FAST": "1"}, True), ({"CS231N_FAST": "no"}, False),
                                       ({"NBGRADER_EXECUTION": "autograde"}, True)])
def test_fast_mode(monkeypatch, env, fast):
    monkeypatch.delenv("CS231N_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert runmode.fast_mode() is fast
    assert runmode.pick(full=10, fast=1) == (1 if fast else 10)
    assert runmode.describe().startswith("FAST" if fast else "full")


def test_a_failed_check_in_ipython_shows_the_cell_and_the_hint_not_the_checks_frames(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("import numpy as np\nfrom cs231n.checks import check_close\n"
                       "check_close('affine_backward db', np.ones(2), np.zeros(2), hint='sum dout over the batch')")
    finally:
        InteractiveShell.clear_instance()
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "CheckFailed: affine_backward db: relative error 1.0e+00" in text and "Hint: sum dout over the batch" in text
    assert "check_close('affine_backward db'" in text  # the student's own line
    assert "checks.py" not in text and "IPython" not in text, text
