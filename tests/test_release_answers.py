"""No answer in the release (issue 23): no given file, public test or visible cell hands out, in a
form that can be called or copied, what a task asks the student to write, and a student who calls
given code instead of writing a task's arithmetic scores 0 on that task."""
import textwrap
from pathlib import Path

import nbformat
import pytest
from course_fixtures import assignment_release
from test_judge import copy_reference

from autograder.budget import TimeBudget
from autograder.judge import judge_package
from autograder.release.build import ANSWER_FORMS, find_leaks

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "a2"


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    """What the release ships, as the release step builds it (build_release: nbgrader's
    generate_assignment, the stubbed package, support files, public tests)."""
    return assignment_release(tmp_path_factory.mktemp("handout"))


def test_the_release_gives_no_answer(handout):
    assert find_leaks(handout, source_dir=SOURCE) == []
    assert (handout / "cs231n" / "stored_values.npz").is_file()  # what the visible checks compare with


PLANTED = {  # release path: (code planted, the form it gives away)
    "cs231n/shapes.py": ("def conv_output_size(size, field, stride, pad):\n"
                         "    return 1 + (size + 2 * pad - field) // stride\n", "output-size arithmetic"),
    "cs231n/vis_utils.py": ("def out_size(n, f, s, p):\n    return (n + 2 * p - f) // s + 1\n",
                            "output-size arithmetic"),
    "cs231n/classifiers/cnn.py": ("PAD = (filter_size - 1) // 2\n", "same padding"),
    "tests/test_arch.py": ("def test_count():\n    assert count == size * size * C * K\n",
                           "a filter's weight count"),
    "tests/test_layers.py": ("from scipy.signal import correlate2d\nexpected = correlate2d(x, w, 'valid')\n",
                             "a convolution or pooling by a library"),
}


@pytest.mark.parametrize("rel", sorted(PLANTED))
def test_the_leak_check_catches_a_planted_answer(handout, tmp_path, rel):
    import shutil

    out = tmp_path / "a2"
    shutil.copytree(handout, out)
    code, form = PLANTED[rel]
    path = out / rel
    path.write_text(path.read_text() + "\n" + code)
    leaks = find_leaks(out, source_dir=SOURCE)
    assert leaks and all(leak.startswith(f"{rel}: gives away {form}") for leak in leaks), leaks
    assert form in ANSWER_FORMS


def test_the_leak_check_catches_a_reference_in_a_visible_cell(handout, tmp_path):
    import shutil

    out = tmp_path / "a2"
    shutil.copytree(handout, out)
    nb = nbformat.read(out / "ConvolutionalNetworks.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from numpy.lib.stride_tricks import sliding_window_view\n"
        "expected = sliding_window_view(x, (2, 2), axis=(2, 3))[:, :, ::2, ::2].max(axis=(4, 5))"))
    nbformat.write(nb, out / "ConvolutionalNetworks.ipynb")
    leaks = find_leaks(out, source_dir=SOURCE)
    assert len(leaks) == 1 and leaks[0].startswith(
        "ConvolutionalNetworks.ipynb: gives away a convolution or pooling by a library"), leaks


# What a student might call instead of writing the arithmetic: the helper given before issue 23,
# the helpers given now (which ask the student's own functions), the fast layers, a layer spec.
DELEGATING = {
    "the old shapes.conv_output_size": """
        def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
            from cs231n.shapes import conv_output_size
            H, W, C = in_shape
            return (conv_output_size(H, size, stride, pad), conv_output_size(W, size, stride, pad), filters)

        def pool_output_shape(in_shape, size, stride):
            from cs231n.shapes import conv_output_size
            H, W, C = in_shape
            return (conv_output_size(H, size, stride, 0), conv_output_size(W, size, stride, 0), C)
        """,
    "the sizes the fast layers use": """
        def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
            from cs231n.shapes import check_fits, conv_out_hw
            H, W, C = in_shape
            check_fits(H, size, stride, pad); check_fits(W, size, stride, pad)
            return (*conv_out_hw(H, W, size, size, stride, pad), filters)

        def pool_output_shape(in_shape, size, stride):
            from cs231n.shapes import check_fits, pool_out_hw
            H, W, C = in_shape
            check_fits(H, size, stride, 0); check_fits(W, size, stride, 0)
            return (*pool_out_hw(H, W, size, size, stride), C)
        """,
    "the fast layers": """
        def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
            import numpy as np
            from cs231n.fast_layers import conv_forward_fast
            H, W, C = in_shape
            out, _ = conv_forward_fast(np.zeros((1, 1, H, W)), np.zeros((filters, 1, size, size)),
                                       np.zeros(filters), {"stride": stride, "pad": pad})
            return out.shape[2], out.shape[3], filters

        def pool_output_shape(in_shape, size, stride):
            import numpy as np
            from cs231n.fast_layers import max_pool_forward_fast
            H, W, C = in_shape
            out, _ = max_pool_forward_fast(np.zeros((1, 1, H, W)),
                                           {"pool_height": size, "pool_width": size, "stride": stride})
            return out.shape[2], out.shape[3], C
        """,
    "the layer specs": """
        def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
            return Conv(filters, size, stride, pad).output_shape(in_shape)

        def pool_output_shape(in_shape, size, stride):
            return Pool(size, stride).output_shape(in_shape)
        """,
}


@pytest.mark.parametrize("how", sorted(DELEGATING))
def test_a_stub_that_delegates_to_given_code_scores_zero(tmp_path, how):
    pkg = copy_reference(tmp_path, appended={"arch.py": textwrap.dedent(DELEGATING[how])})
    results = judge_package(pkg, tasks=["conv_output_shape", "pool_output_shape"], budget=TimeBudget(judge_case=10))
    assert {r.task for r in results} == {"conv_output_shape", "pool_output_shape"}
    assert all(not r.passed and r.points == 0 for r in results), [(r.case, r.message[:80]) for r in results]
