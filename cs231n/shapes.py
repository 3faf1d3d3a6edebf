"""Input checks shared by the naive and the fast layers, with errors that say what to change.

The naive layers call the `check_*` helpers, which validate the inputs (a size that does not
fit raises a ValueError) but return no output size: working that out is the student's task.
Given code that needs output sizes (`conv_shapes`, `pool_shapes`: the fast layers; the ResNet)
takes them from the student's own cs231n.arch.conv_output_shape and pool_output_shape.
"""


def check_fits(size, field, stride, pad, what="conv", axis="H"):
    """Raise ValueError unless windows of length `field` at `stride` tile an input of length
    `size` padded by `pad` on both sides exactly; return nothing.

    The message says what does not fit and what to change. The output length itself is never
    computed here: that is the student's task (cs231n.arch.conv_output_shape).
    """
    for name, value, low in (("stride", stride, 1), ("pad", pad, 0), ("field", field, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{what}: {name} must be an integer >= {low}, got {value!r}")
    padded = size + 2 * pad
    if field > padded:
        raise ValueError(
            f"{what}: the {axis} window ({field}) is larger than the padded input "
            f"({size} + 2*{pad} = {padded}); use a smaller window or more padding")
    if (padded - field) % stride:
        raise ValueError(
            f"{what}: the {axis} windows do not fit: the padded input ({size} + 2*{pad} = {padded}) "
            f"less one window ({field}) leaves {padded - field}, which the stride {stride} does not "
            "divide, so the last window would hang over the edge; change the stride or the padding")


def _students_count(function, name, *args):
    """One output length from the student's cs231n.arch function (its stub's NotImplementedError
    passes through: the traceback names the function to write); a ValueError if it returns
    something that is not a shape."""
    shape = function(*args)
    if not (isinstance(shape, tuple) and len(shape) == 3 and all(int(d) == d for d in shape)):
        raise ValueError(f"cs231n.arch.{name}{args} returned {shape!r}, not an (H, W, C) tuple "
                         "of ints; fix it first: the fast layers and the ResNet use it")
    return int(shape[0])


def same_padding(size):
    """The student's arch.same_pad(size), for given code (the conv nets)."""
    from .arch import same_pad

    return int(same_pad(size))


def conv_out_hw(H, W, HH, WW, stride, pad):
    """(H_out, W_out) of a convolution, counted by the student's arch.conv_output_shape."""
    from .arch import conv_output_shape

    return (_students_count(conv_output_shape, "conv_output_shape", (H, H, 1), 1, HH, stride, pad),
            _students_count(conv_output_shape, "conv_output_shape", (W, W, 1), 1, WW, stride, pad))


def pool_out_hw(H, W, PH, PW, stride):
    """(H_out, W_out) of a pooling layer, counted by the student's arch.pool_output_shape."""
    from .arch import pool_output_shape

    return (_students_count(pool_output_shape, "pool_output_shape", (H, H, 1), PH, stride),
            _students_count(pool_output_shape, "pool_output_shape", (W, W, 1), PW, stride))


def check_ndim(name, array, ndim, layout):
    """Raise ValueError unless `array` has `ndim` dimensions (layout e.g. '(N, C, H, W)')."""
    if getattr(array, "ndim", None) != ndim:
        got = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"{name} must be a {ndim}-d array shaped {layout}, got shape {got}")


def check_conv_inputs(x, w, b, conv_param, what="conv"):
    """Validate the inputs of a convolution; return (N, C, H, W, F, HH, WW, stride, pad).

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {'stride': int, 'pad': int}.
    Raises ValueError, with the arithmetic, when the filter's positions do not tile the padded
    input; the output size itself is left to the caller.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_ndim("w", w, 4, "(F, C, HH, WW)")
    N, C, H, W = x.shape
    F, Cw, HH, WW = w.shape
    if Cw != C:
        raise ValueError(f"{what}: x has {C} channels but each filter in w has {Cw}; "
                         f"w must be shaped (F, {C}, HH, WW) to span the input's full depth")
    if getattr(b, "shape", None) != (F,):
        raise ValueError(f"{what}: b must have shape ({F},), one bias per filter, "
                         f"got {getattr(b, 'shape', type(b).__name__)}")
    missing = {"stride", "pad"} - set(conv_param)
    if missing:
        raise ValueError(f"{what}: conv_param is missing {sorted(missing)}; "
                         "pass e.g. {'stride': 1, 'pad': 1}")
    stride, pad = conv_param["stride"], conv_param["pad"]
    check_fits(H, HH, stride, pad, what, "height")
    check_fits(W, WW, stride, pad, what, "width")
    return N, C, H, W, F, HH, WW, int(stride), int(pad)


def conv_shapes(x, w, b, conv_param, what="conv"):
    """check_conv_inputs, plus the output sizes: (N, C, H, W, F, HH, WW, stride, pad, H_out, W_out)."""
    N, C, H, W, F, HH, WW, stride, pad = check_conv_inputs(x, w, b, conv_param, what)
    return (N, C, H, W, F, HH, WW, stride, pad) + conv_out_hw(H, W, HH, WW, stride, pad)


def check_conv_dout(dout, x, w, conv_param, what="conv backward"):
    """Raise ValueError unless dout is 4-d with x's batch size and w's filter count (its height
    and width are the student's to check: they are the forward pass's output sizes)."""
    N, F = x.shape[0], w.shape[0]
    check_ndim("dout", dout, 4, f"({N}, {F}, H_out, W_out)")
    if dout.shape[:2] != (N, F):
        raise ValueError(f"{what}: dout must be shaped like the forward output ({N}, {F}, H_out, W_out): "
                         f"one map per example and filter, got {dout.shape}")


def check_pool_inputs(x, pool_param, what="max pool"):
    """Validate the inputs of a pooling layer; return (N, C, H, W, PH, PW, stride).

    x: (N, C, H, W); pool_param: {'pool_height': int, 'pool_width': int, 'stride': int}.
    Raises ValueError, with the arithmetic, when the windows do not tile the input.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    missing = {"pool_height", "pool_width", "stride"} - set(pool_param)
    if missing:
        raise ValueError(f"{what}: pool_param is missing {sorted(missing)}; "
                         "pass e.g. {'pool_height': 2, 'pool_width': 2, 'stride': 2}")
    N, C, H, W = x.shape
    PH, PW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    check_fits(H, PH, stride, 0, what, "height")
    check_fits(W, PW, stride, 0, what, "width")
    return N, C, H, W, int(PH), int(PW), int(stride)


def pool_shapes(x, pool_param, what="max pool"):
    """check_pool_inputs, plus the output sizes: (N, C, H, W, PH, PW, stride, H_out, W_out)."""
    N, C, H, W, PH, PW, stride = check_pool_inputs(x, pool_param, what)
    return (N, C, H, W, PH, PW, stride) + pool_out_hw(H, W, PH, PW, stride)


def check_pool_dout(dout, x, pool_param, what="max pool backward"):
    """Raise ValueError unless dout is 4-d with x's batch size and depth (its height and width
    are the student's to check)."""
    N, C = x.shape[:2]
    check_ndim("dout", dout, 4, f"({N}, {C}, H_out, W_out)")
    if dout.shape[:2] != (N, C):
        raise ValueError(f"{what}: dout must be shaped like the forward output ({N}, {C}, H_out, W_out): "
                         f"pooling keeps the batch and the depth, got {dout.shape}")
