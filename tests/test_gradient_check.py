"""The numerical gradients every other check stands on, against closed forms."""
import numpy as np
import pytest

from cs231n.gradient_check import (eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse,
                                   rel_error)


def test_rel_error_is_symmetric_and_scale_free():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert abs(rel_error(1.0, 1.1) - 0.1 / 2.1) < 1e-12 and rel_error(1.0, 1.1) == rel_error(1.1, 1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_gradients_match_closed_forms(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    assert rel_error(eval_numerical_gradient(lambda z: np.sum(np.sin(z)), x), np.cos(x)) < 1e-8
    dout = rng.standard_normal((3, 4))
    assert rel_error(eval_numerical_gradient_array(lambda z: z ** 2, x, dout), 2 * x * dout) < 1e-6
    assert np.array_equal(x, before), "the point must be restored exactly"


def test_sparse_check_reports_each_entry(rng, capsys):
    x = rng.standard_normal(6)
    rows = grad_check_sparse(lambda z: np.sum(z ** 3), x, 3 * x ** 2, num_checks=4, seed=0)
    assert len(rows) == 4 and all(err < 1e-7 for *_, err in rows)
    assert capsys.readouterr().out.count("relative error") == 4
    wrong = grad_check_sparse(lambda z: np.sum(z ** 3), x, x ** 2, num_checks=2, seed=0)
    assert all(err > 0.1 for *_, err in wrong)


def test_float32_points_are_refused_with_advice():
    with pytest.raises(TypeError, match="float64"):
        eval_numerical_gradient(np.sum, np.zeros(3, dtype=np.float32))
