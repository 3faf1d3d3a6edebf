"""cs231n.arch against the lecture's and the papers' numbers: output sizes, padding, parameter
counts, multiply-adds and the case studies (LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet, ResNet,
AlphaGo), plus the given blocks, table and totals.

Tests of the student functions carry their marks (`pytest -m conv_output_shape`); a test of a
whole network carries the mark of every function it needs. Unmarked tests check given code.
"""
import math

import pytest

from cs231n import arch
from cs231n.arch import (ALEXNET, ALEXNET_TWO_GPU, ALPHAGO_POLICY, CASE_STUDIES, FC, GOOGLENET, LENET5,
                         RESNET18, RESNET34, RESNET50, RESNET50_V1_5, RESNET152, RESNET152_V1_5, VGG16,
                         VGG19, ZFNET, BatchNorm, Conv, GlobalAvgPool, Inception, Network, Norm, Pool,
                         Residual, Row, Summary, conv_macs,
                         conv_output_shape, conv_param_count, fc_param_count, format_bytes, format_count,
                         format_table, pool_output_shape, receptive_field, same_pad, summarize)

m = pytest.mark


# --------------------------------------------------------------------------------------------
# conv_output_shape
# --------------------------------------------------------------------------------------------
@m.conv_output_shape
@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_lecture_7x7_input_3x3_filter(stride, expected):
    assert conv_output_shape((7, 7, 1), 1, 3, stride) == (expected, expected, 1)


@m.conv_output_shape
def test_lecture_stride_3_does_not_fit_and_says_2_33():
    with pytest.raises(ValueError, match=r"2\.33"):
        conv_output_shape((7, 7, 1), 1, 3, stride=3)


@m.conv_output_shape
def test_lecture_pad_1_keeps_7x7():
    assert conv_output_shape((7, 7, 3), 4, 3, stride=1, pad=1) == (7, 7, 4)


@m.conv_output_shape
def test_lecture_ten_5x5_filters_pad_2_on_32x32x3():
    assert conv_output_shape((32, 32, 3), 10, 5, stride=1, pad=2) == (32, 32, 10)


@m.conv_output_shape
def test_lecture_32_28_24_without_padding():
    first = conv_output_shape((32, 32, 3), 6, 5)
    assert first == (28, 28, 6)
    assert conv_output_shape(first, 10, 5) == (24, 24, 10)


@m.conv_output_shape
def test_lecture_1x1_conv_with_32_filters_on_56x56x64():
    assert conv_output_shape((56, 56, 64), 32, 1) == (56, 56, 32)


def test_conv_output_shape_refuses_a_flat_input():
    with pytest.raises(ValueError, match="H x W x C"):
        conv_output_shape((4096,), 8, 3)


# --------------------------------------------------------------------------------------------
# pool_output_shape
# --------------------------------------------------------------------------------------------
@m.pool_output_shape
def test_lecture_alexnet_pool1_55_to_27():
    assert pool_output_shape((55, 55, 96), 3, 2) == (27, 27, 96)


@m.pool_output_shape
def test_lecture_2x2_stride_2_on_4x4():
    assert pool_output_shape((4, 4, 1), 2, 2) == (2, 2, 1)


@m.pool_output_shape
def test_pool_that_does_not_fit_shows_the_arithmetic():
    with pytest.raises(ValueError, match=r"2\.50"):
        pool_output_shape((6, 6, 4), 3, 2)


# --------------------------------------------------------------------------------------------
# conv_param_count and fc_param_count
# --------------------------------------------------------------------------------------------
@m.conv_param_count
def test_lecture_ten_5x5x3_filters_have_760_parameters():
    weights, biases = conv_param_count((32, 32, 3), 10, 5)
    assert (weights, biases) == (750, 10)
    assert (weights + biases) // 10 == 76 and weights + biases == 760


@m.conv_param_count
@pytest.mark.parametrize("in_shape, filters, size, weights", [
    ((227, 227, 3), 96, 11, 34_848),   # AlexNet CONV1, "about 35K"
    ((224, 224, 3), 64, 3, 1_728),     # VGG-16 first conv
    ((224, 224, 64), 64, 3, 36_864),   # VGG-16 second conv
    ((56, 56, 64), 32, 1, 2_048),      # the 1x1 conv: a 64-d dot product per filter
])
def test_lecture_conv_weights(in_shape, filters, size, weights):
    assert conv_param_count(in_shape, filters, size) == (weights, filters)


@m.fc_param_count
@pytest.mark.parametrize("in_shape, units, weights", [
    ((7, 7, 512), 4096, 102_760_448),  # VGG-16's first FC layer
    ((6, 6, 256), 4096, 37_748_736),   # AlexNet FC6
    ((4096,), 1000, 4_096_000),
])
def test_lecture_fc_weights(in_shape, units, weights):
    assert fc_param_count(in_shape, units) == (weights, units)


# --------------------------------------------------------------------------------------------
# same_pad
# --------------------------------------------------------------------------------------------
@m.same_pad
@pytest.mark.parametrize("field, pad", [(1, 0), (3, 1), (5, 2), (7, 3)])
def test_lecture_same_padding(field, pad):
    assert same_pad(field) == pad and isinstance(same_pad(field), int)


@m.same_pad
@pytest.mark.parametrize("field", [2, 4, 10])
def test_even_filters_have_no_same_padding(field):
    with pytest.raises(ValueError):
        same_pad(field)


# --------------------------------------------------------------------------------------------
# conv_macs
# --------------------------------------------------------------------------------------------
@m.conv_macs
def test_lecture_alexnet_conv1_costs_105m_multiply_adds():
    assert conv_macs((227, 227, 3), 96, 11, stride=4) == 105_415_200


@m.conv_macs
def test_a_1x1_conv_costs_a_dot_product_over_the_depth_per_output():
    assert conv_macs((56, 56, 64), 32, 1) == 6_422_528


# --------------------------------------------------------------------------------------------
# The case studies (they need every counting function)
# --------------------------------------------------------------------------------------------
NETWORK_MARKS = [m.conv_output_shape, m.pool_output_shape, m.conv_param_count, m.fc_param_count, m.conv_macs]


def _all_marks(test):
    for mark in NETWORK_MARKS:
        test = mark(test)
    return test


def _shapes(summary):
    return {r.name: r.shape for r in summary.rows}


@_all_marks
def test_alexnet_rows_from_the_lecture():
    s = summarize(ALEXNET)
    assert _shapes(s) == {
        "INPUT": (227, 227, 3), "CONV1": (55, 55, 96), "POOL1": (27, 27, 96), "NORM1": (27, 27, 96),
        "CONV2": (27, 27, 256), "POOL2": (13, 13, 256), "NORM2": (13, 13, 256),
        "CONV3": (13, 13, 384), "CONV4": (13, 13, 384), "CONV5": (13, 13, 256),
        "POOL3": (6, 6, 256), "FC6": (4096,), "FC7": (4096,), "FC8": (1000,)}
    assert (s.row("CONV1").weights, s.row("CONV1").biases) == (34_848, 96)
    assert round(s.row("CONV1").weights, -3) == 35_000
    assert s.row("POOL1").params == 0 and s.row("NORM1").params == 0 and s.row("NORM2").params == 0
    # GoogLeNet's ~5M is "12x fewer than AlexNet": AlexNet has about 60M
    assert 11 < s.params / 5e6 < 13.5


@_all_marks
def test_alexnet_on_224_does_not_fit_and_names_the_layer():
    import dataclasses

    with pytest.raises(ValueError, match=r"CONV1 .*input 224x224x3.*54\.25"):
        summarize(dataclasses.replace(ALEXNET, input_shape=(224, 224, 3)))


@_all_marks
def test_zfnet_conv1_is_7x7_stride_2_and_conv3_to_5_are_wider():
    s = summarize(ZFNET)
    conv1 = ZFNET.layers[0]
    assert (conv1.size, conv1.stride) == (7, 2)
    assert s.row("CONV1").shape == (111, 111, 96)
    assert [s.row(f"CONV{i}").shape[2] for i in (3, 4, 5)] == [512, 1024, 512]
    assert s.row("POOL3").shape == (6, 6, 512) and s.row("FC8").shape == (1000,)


@_all_marks
def test_vgg16_about_138m_parameters_and_the_lecture_rows():
    s = summarize(VGG16)
    assert s.params == 138_357_544 and s.weights == 138_344_128
    assert round(s.params / 1e6) == 138
    convs = [r for r in s.rows if r.kind == "CONV"]
    fcs = [r for r in s.rows if r.kind == "FC"]
    assert len(convs) + len(fcs) == 16
    assert [convs[0].weights, convs[1].weights, fcs[0].weights] == [1_728, 36_864, 102_760_448]
    assert s.row("POOL5").shape == (7, 7, 512)
    assert all(r.shape[:2] in [(224, 224), (112, 112), (56, 56), (28, 28), (14, 14)] for r in convs)


@_all_marks
def test_vgg16_memory_is_the_sum_of_its_rows_not_the_slides_24m():
    s = summarize(VGG16)
    assert s.activations == 15_237_608                       # about 15.2M values
    assert s.activation_bytes == 60_950_432                  # about 61 MB in float32
    assert round(s.activation_bytes / 1e6) == 61
    assert summarize(VGG16, bytes_per_value=2).activation_bytes == 30_475_216
    assert s.activations < 0.65 * 24e6, "the slide's 24M total is not the sum of its own rows"


@_all_marks
def test_vgg16_memory_is_early_and_parameters_are_late():
    s = summarize(VGG16)
    most_memory = max(s.rows, key=lambda r: r.activations)
    most_params = max(s.rows, key=lambda r: r.params)
    assert most_memory.name in ("CONV1", "CONV2") and most_memory.activations == 224 * 224 * 64
    assert most_params is next(r for r in s.rows if r.kind == "FC")
    first_block = sum(r.activations for r in s.rows[1:4])
    assert first_block > 0.4 * s.activations
    assert sum(r.params for r in s.rows if r.kind == "FC") > 0.85 * s.params


@m.conv_output_shape
@m.conv_param_count
@m.conv_macs
def test_alphago_policy_net_maps_19x19x48_to_19x19():
    s = summarize(ALPHAGO_POLICY)
    assert s.rows[0].shape == (19, 19, 48) and s.rows[-1].shape == (19, 19, 1)
    assert [r.shape for r in s.rows[1:-1]] == [(19, 19, 192)] * 12
    assert s.row("CONV1").weights == 5 * 5 * 48 * 192
    assert s.row("CONV2").weights == 3 * 3 * 192 * 192
    assert ALPHAGO_POLICY.layers[-1] == Conv(1, 1, stride=1, pad=0)


@_all_marks
def test_lenet5_is_conv_pool_conv_pool_conv_fc():
    s = summarize(LENET5)
    assert [r.kind for r in s.rows[1:6]] == ["CONV", "POOL", "CONV", "POOL", "CONV"]
    assert [r.shape for r in s.rows[1:6]] == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (1, 1, 120)]
    assert s.rows[-1].kind == "FC" and s.rows[-1].shape == (10,)


@_all_marks
@pytest.mark.parametrize("net", CASE_STUDIES, ids=[n.name for n in CASE_STUDIES])
def test_every_case_study_summarizes_and_prints(net):
    s = summarize(net)
    text = format_table(s)
    assert f"{s.params:,}" in text and f"{s.activations:,}" in text
    assert s.activations == sum(math.prod(r.shape) + r.inner for r in s.rows)
    assert all(r.inner > 0 for r in s.rows if r.kind in ("INCEPTION", "RES"))


# --------------------------------------------------------------------------------------------
# Given code: specs, naming, rows, totals, the table and the plot
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, fragment", [
    (lambda: Conv(0, 3), "filters must be an integer >= 1, got 0"),
    (lambda: Conv(8, 3, stride=0), "stride must be an integer >= 1"),
    (lambda: Conv(8, 3, pad=-1), "pad must be an integer >= 0"),
    (lambda: Pool(2, 1.5), "stride must be an integer >= 1, got 1.5"),
    (lambda: FC(True), "units must be an integer"),
    (lambda: Network("flat", (10,), ()), "H x W x C"),
    (lambda: summarize(ALEXNET, bytes_per_value=0), "bytes_per_value"),
])
def test_bad_specs_are_value_errors_that_say_what(make, fragment):
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        make()


def test_layers_are_numbered_as_in_the_lecture():
    assert [name for name, _ in ALEXNET.named_layers()] == [
        "CONV1", "POOL1", "NORM1", "CONV2", "POOL2", "NORM2", "CONV3", "CONV4", "CONV5", "POOL3",
        "FC6", "FC7", "FC8"]
    assert Network("n", (8, 8, 3), (Conv(4, 3, name="stem"), Pool())).named_layers()[0][0] == "stem"
    assert ALEXNET.layers[0] == Conv(96, 11, stride=4, pad=0)


def test_norm_keeps_the_shape_and_has_no_parameters():
    assert Norm().output_shape((27, 27, 96)) == (27, 27, 96)
    assert Norm().param_count((27, 27, 96)) == (0, 0) == Pool(3, 2).param_count((55, 55, 96))
    with pytest.raises(ValueError, match="cannot follow an FC layer"):
        Norm().output_shape((4096,))


class _Flatten:
    """A stand-in layer spec with a flat output, so that the test needs no student function."""

    kind, name = "FLAT", None

    def describe(self):
        return "flatten"

    def output_shape(self, in_shape):
        return (math.prod(in_shape),)

    def param_count(self, in_shape):
        return 0, 0


def test_a_layer_that_cannot_follow_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"tiny NORM1 \(normalisation.*\), input 192: NORM needs an H x W x C"):
        summarize(Network("tiny", (8, 8, 3), (_Flatten(), Norm())))


def _hand_summary(bytes_per_value=4):
    rows = (Row("INPUT", "INPUT", "", (4, 4, 3)),
            Row("CONV1", "CONV", "2 3x3 filters, stride 1, pad 1", (4, 4, 2), 54, 2, macs=7),
            Row("FC2", "FC", "1000 units", (1000,), 32_000, 1000, macs=32_000))
    return Summary("hand", rows, bytes_per_value)


def test_totals_add_the_rows_input_included():
    s = _hand_summary(bytes_per_value=8)
    assert s.rows[1].activations == 32 and s.rows[2].params == 33_000
    assert (s.activations, s.weights, s.biases, s.params) == (48 + 32 + 1000, 32_054, 1002, 33_056)
    assert (s.activation_bytes, s.param_bytes) == (1080 * 8, 33_056 * 8)
    with pytest.raises(KeyError, match="INPUT"):
        s.row("POOL9")


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1_234, "1.2 KB"),
                                     (60_950_432, "61.0 MB"), (553_430_176, "553.4 MB"),
                                     (2_000_000_000, "2.0 GB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_table_is_aligned_with_thousands_separators():
    text = format_table(_hand_summary())
    lines = text.splitlines()
    table = lines[1:-1]
    assert len({len(line) for line in table}) == 1, "every row of the table has the same width"
    assert "32,000" in text and "33,056" in text and "1,080" in text
    assert lines[1].split()[:3] == ["layer", "spec", "output"]
    assert "4x4x3" in text and "4.3 KB" in text
    assert lines[-1].startswith("memory: 1,080 values = 4,320 bytes")
    assert "mult-adds" in lines[1] and "32.0K" in text and "compute: 32,007 multiply-adds" in text


def test_plot_summary_draws_memory_parameters_and_compute():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = arch.plot_summary(_hand_summary())
    assert len(axes) == 3 and all(len(ax.patches) == 3 for ax in axes)
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "linear"]
    assert [p.get_height() for p in axes[2].patches] == [0, 7, 32_000]
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["INPUT", "CONV1", "FC2"]
    _, two = plt.subplots(2, 1)
    assert len(arch.plot_summary(_hand_summary(), axes=two)) == 2  # memory and parameters only
    plt.close("all")


# --------------------------------------------------------------------------------------------
# Compute, and the networks beyond the simple pattern: GoogLeNet and ResNet
# --------------------------------------------------------------------------------------------
@_all_marks
def test_vgg16_costs_15_47_g_multiply_adds():
    s = summarize(VGG16)
    assert round(s.macs / 1e9, 2) == 15.47
    fc = sum(r.macs for r in s.rows if r.kind == "FC")
    assert fc == sum(r.weights for r in s.rows if r.kind == "FC")  # one multiply-add per FC weight
    assert s.depth == 16 and summarize(VGG19).depth == 19


@_all_marks
def test_the_case_studies_count_compute_on_every_weight_layer():
    for net in CASE_STUDIES:
        s = summarize(net)
        assert all(r.macs > 0 for r in s.rows if r.kind in ("CONV", "FC", "INCEPTION", "RES")), net.name
        assert all(r.macs == 0 for r in s.rows if r.kind in ("INPUT", "POOL", "NORM", "BN")), net.name
        assert s.macs == sum(r.macs for r in s.rows)
        assert format_count(s.macs) in format_table(s)


@_all_marks
@pytest.mark.parametrize("net, params, macs, depth, shapes, fc_weights", [
    (RESNET34, 21_797_672, 3.6e9, 34,
     {"CONV2_3": (56, 56, 64), "CONV5_3": (7, 7, 512), "AVGPOOL": (1, 1, 512)}, 512 * 1000),
    (RESNET152, 60_192_808, 11.3e9, 152,
     {"CONV4_36": (14, 14, 1024), "CONV5_3": (7, 7, 2048)}, 2048 * 1000),
], ids=["resnet34", "resnet152"])
def test_resnet_parameters_and_compute_match_the_paper(net, params, macs, depth, shapes, fc_weights):
    s = summarize(net)
    assert s.params == params
    assert abs(s.macs / macs - 1) < 0.02
    assert s.depth == depth
    assert {name: s.row(name).shape for name in shapes} == shapes
    assert s.row("FC").weights == fc_weights


@_all_marks
def test_the_stride_of_a_bottleneck_moves_compute_not_parameters():
    paper, torchvision = summarize(RESNET152), summarize(RESNET152_V1_5)
    assert paper.params == torchvision.params
    assert torchvision.macs > paper.macs
    assert abs(paper.macs / 11.3e9 - 1) < abs(torchvision.macs / 11.3e9 - 1)
    # only the three downsampling blocks differ: their 3x3 (and first 1x1) see the larger map
    differ = [a.name for a, b in zip(paper.rows, torchvision.rows) if a.macs != b.macs]
    assert differ == ["CONV3_1", "CONV4_1", "CONV5_1"]


@_all_marks
def test_lecture_claims_about_googlenet_and_resnet():
    alexnet, paper_alexnet = summarize(ALEXNET), summarize(ALEXNET_TWO_GPU)
    googlenet, vgg16, vgg19, resnet = (summarize(n) for n in (GOOGLENET, VGG16, VGG19, RESNET152))
    assert 5e6 < googlenet.params < 7.5e6            # "about 5M": 7.0M with the classifier
    assert 8 < alexnet.params / googlenet.params < 13  # "12x fewer": 8.9x against one tower
    assert 1.8 < googlenet.macs / paper_alexnet.macs < 2.4  # "about 2x more compute"
    assert googlenet.depth == 22
    assert resnet.depth / vgg19.depth == 8           # "8x deeper than VGG"
    assert resnet.macs < vgg16.macs < vgg19.macs     # "still lower complexity"


@_all_marks
def test_googlenet_inception_rows_match_the_papers_table():
    s = summarize(GOOGLENET)
    assert s.row("INC3a").shape == (28, 28, 256) and s.row("INC5b").shape == (7, 7, 1024)
    # Szegedy et al. 2014, table 1: ops in millions
    for name, ops in [("INC3a", 128), ("INC3b", 304), ("INC4a", 73), ("INC4b", 88), ("INC4c", 100),
                      ("INC4d", 119), ("INC4e", 170), ("INC5b", 71)]:
        assert abs(s.row(name).macs / 1e6 - ops) <= 0.015 * ops, name
    # and its parameters, in K = 1024 (the table's 4c, 4d and 5a disagree with their own ops)
    for name, params_k in [("INC3a", 159), ("INC3b", 380), ("INC4b", 437), ("INC4e", 840)]:
        assert abs(s.row(name).weights / 1024 - params_k) <= 0.01 * params_k, name
    assert abs((s.row("CONV2_REDUCE").macs + s.row("CONV2").macs) / 1e6 - 360) < 1


@_all_marks
def test_alexnet_on_two_gpus_has_the_papers_60m():
    one, two = summarize(ALEXNET), summarize(ALEXNET_TWO_GPU)
    assert round(one.params / 1e6, 1) == 62.4 and round(two.params / 1e6, 1) == 61.0
    saved = sum(one.row(n).weights - two.row(n).weights for n in ("CONV2", "CONV4", "CONV5"))
    assert saved == one.params - two.params == 5 * 5 * 48 * 256 + 3 * 3 * 192 * 384 + 3 * 3 * 192 * 256
    assert [r.shape for r in one.rows] == [r.shape for r in two.rows]


@m.conv_output_shape
@m.conv_param_count
@m.conv_macs
@m.pool_output_shape
def test_inception_reductions_save_compute_and_depth():
    module = dict(c1=64, c3r=96, c3=128, c5r=16, c5=32, pool_proj=32)
    shape = (28, 28, 192)
    reduced, naive = Inception(**module), Inception(**module, reduce=False)
    assert reduced.output_shape(shape) == (28, 28, 256)
    assert naive.output_shape(shape) == (28, 28, 64 + 128 + 32 + 192)  # the pool passes 192 through
    assert reduced.macs(shape) == 28 * 28 * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32)
    assert naive.macs(shape) == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32)
    assert naive.macs(shape) > 2 * reduced.macs(shape)
    assert naive.param_count(shape)[0] > 2 * reduced.param_count(shape)[0]
    assert (reduced.path_depth(shape), naive.path_depth(shape)) == (2, 1) == (reduced.depth, naive.depth)


@m.conv_output_shape
@m.conv_param_count
@m.conv_macs
def test_residual_blocks_identity_and_projection():
    basic = Residual(64)
    assert basic.output_shape((56, 56, 64)) == (56, 56, 64) and not basic.has_projection((56, 56, 64))
    assert basic.param_count((56, 56, 64)) == (2 * 9 * 64 * 64 + 2 * 64, 2 * 64)  # convs + BN scales, BN shifts
    assert basic.macs((56, 56, 64)) == 2 * 56 * 56 * 64 * 9 * 64
    down = Residual(128, stride=2)
    assert down.output_shape((56, 56, 64)) == (28, 28, 128) and down.has_projection((56, 56, 64))
    assert down.param_count((56, 56, 64))[0] == 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * 128
    bottleneck = Residual(64, bottleneck=True)
    assert bottleneck.output_shape((56, 56, 64)) == (56, 56, 256) and bottleneck.has_projection((56, 56, 64))
    assert bottleneck.output_shape((56, 56, 256)) == (56, 56, 256) and not bottleneck.has_projection((56, 56, 256))
    assert bottleneck.path_depth((56, 56, 256)) == 3 and basic.path_depth((56, 56, 64)) == 2
    paper, torchvision = Residual(128, 2, True, "1x1"), Residual(128, 2, True, "3x3")
    assert paper.param_count((56, 56, 256)) == torchvision.param_count((56, 56, 256))
    # the 3x3 gives 28x28 either way; with the stride there, the first 1x1 runs on all of 56x56
    assert torchvision.macs((56, 56, 256)) - paper.macs((56, 56, 256)) == (56 * 56 - 28 * 28) * 256 * 128


@m.conv_output_shape
@m.pool_output_shape
def test_floor_rounds_down_as_the_frameworks_do():
    with pytest.raises(ValueError, match="112.50"):
        Conv(64, 7, stride=2, pad=3).output_shape((224, 224, 3))
    assert Conv(64, 7, stride=2, pad=3, floor=True).output_shape((224, 224, 3)) == (112, 112, 64)
    assert Pool(3, 2, pad=1, floor=True).output_shape((112, 112, 64)) == (56, 56, 64)
    assert Conv(8, 1, stride=2, floor=True).output_shape((56, 55, 4)) == (28, 28, 8)
    with pytest.raises(ValueError):
        Conv(8, 9, floor=True).output_shape((5, 5, 4))  # too small whatever is dropped


def test_batchnorm_and_global_average_pooling():
    assert BatchNorm().param_count((56, 56, 64)) == (64, 64) and BatchNorm().macs((56, 56, 64)) == 0
    assert BatchNorm().output_shape((7, 7, 8)) == (7, 7, 8)
    assert GlobalAvgPool().output_shape((7, 7, 512)) == (1, 1, 512)
    assert GlobalAvgPool().param_count((7, 7, 512)) == (0, 0)
    with pytest.raises(ValueError, match="groups"):
        Conv(10, 3, groups=3)
    with pytest.raises(ValueError, match="stride_at"):
        Residual(64, stride_at="first")


@pytest.mark.parametrize("n, text", [(999, "999"), (32_000, "32.0K"), (105_415_200, "105.4M"),
                                     (15_470_264_320, "15.47G")])
def test_format_count(n, text):
    assert format_count(n) == text


@m.conv_output_shape
@m.pool_output_shape
@m.conv_param_count
@m.fc_param_count
@m.conv_macs
@pytest.mark.parametrize("net, params, gmacs", [
    (RESNET18, 11_689_512, 1.8),       # torchvision's count; the paper's 1.8 G "FLOPs"
    (RESNET50, 25_557_032, 3.8),       # the paper: stride in the first 1x1
    (RESNET50_V1_5, 25_557_032, 4.1),  # torchvision: stride in the 3x3
], ids=["ResNet-18", "ResNet-50", "ResNet-50-v1.5"])
def test_resnet_18_and_50_have_their_published_counts(net, params, gmacs):
    s = summarize(net)
    assert s.params == params
    assert abs(s.macs / 1e9 - gmacs) < 0.06  # 1.81 G, 3.86 G, 4.09 G: the published figures, rounded
    assert s.depth == int(net.name.split("-")[1].split()[0])


# --------------------------------------------------------------------------------------------
# receptive_field
# --------------------------------------------------------------------------------------------
@m.receptive_field
@pytest.mark.parametrize("layers, rf", [
    ([], 1),
    ([(3, 1)], 3),
    ([(3, 1)] * 2, 5),             # the lecture: two stacked 3x3 convs see 5x5
    ([(3, 1)] * 3, 7),             # three see 7x7, as one 7x7 conv does
    ([(7, 1)], 7),
    ([(2, 2), (3, 1)], 6),         # a 2x2 pool doubles what a 3x3 after it sees, plus the window
    ([(11, 4), (3, 2)], 19),       # AlexNet's CONV1 then POOL1
])
def test_lecture_receptive_fields(layers, rf):
    assert receptive_field(layers) == rf


@m.receptive_field
def test_receptive_field_refuses_a_zero_stride():
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        receptive_field([(3, 0)])
