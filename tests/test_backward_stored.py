"""Each backward task on its own: its gradients for fixed inputs against the values the
reference gave for them, stored at release (cs231n.stored, autograder/release/stored_backward.py).

A backward pass gets its cache from given code where the layer fixes it (affine, ReLU, dropout,
convolution, pooling), so these checks pass whenever the backward pass is right, whatever the
forward pass does; the normalisations' caches are the student's own design, so there the forward
pass runs, for its cache only. The numerical checks of test_layers.py are skipped (saying why)
while the forward pass they differentiate is not right (tests/conftest.py).
"""
import pytest

from helpers import BACKWARD, check_stored_backward


@pytest.mark.parametrize("task", [pytest.param(task, marks=getattr(pytest.mark, task)) for task in BACKWARD])
def test_backward_matches_the_stored_gradients(task):
    check_stored_backward(task)
