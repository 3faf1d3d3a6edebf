"""Shape arithmetic shared by the naive and the fast layers, with errors that show the sums.

Kept out of the student's way. The naive layers call the `check_*` helpers, which validate the
inputs (a size that does not fit raises a ValueError showing the arithmetic) but return no
output size: working that out is the student's task. The fast layers use `conv_shapes` and
`pool_shapes`, which also return the output sizes.
"""


def conv_output_size(size, field, stride, pad, what="conv", axis="H"):
    """Output length along one axis of a convolution or pooling window sweep.

    Inputs: size (int, input length), field (int, window length), stride (int >= 1),
    pad (int >= 0, added on both sides). Returns: int, 1 + (size + 2*pad - field) // stride.
    Raises ValueError, showing the arithmetic, when the windows do not tile the padded input
    exactly or the window is larger than the padded input.
    """
    for name, value, low in (("stride", stride, 1), ("pad", pad, 0), ("field", field, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{what}: {name} must be an integer >= {low}, got {value!r}")
    padded = size + 2 * pad
    if field > padded:
        raise ValueError(
            f"{what}: the {axis} window ({field}) is larger than the padded input "
            f"({size} + 2*{pad} = {padded}); use a smaller window or more padding")
    span = padded - field
    if span % stride:
        raise ValueError(
            f"{what}: the {axis} windows do not fit: ({size} + 2*{pad} - {field}) / {stride} + 1 "
            f"= {span / stride + 1:.2f}, not an integer; change the stride or the padding so that "
            f"size + 2*pad - window (here {span}) is divisible by the stride")
    return 1 + span // stride


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
    conv_output_size(H, HH, stride, pad, what, "height")
    conv_output_size(W, WW, stride, pad, what, "width")
    return N, C, H, W, F, HH, WW, int(stride), int(pad)


def conv_shapes(x, w, b, conv_param, what="conv"):
    """check_conv_inputs, plus the output sizes: (N, C, H, W, F, HH, WW, stride, pad, H_out, W_out)."""
    N, C, H, W, F, HH, WW, stride, pad = check_conv_inputs(x, w, b, conv_param, what)
    H_out = conv_output_size(H, HH, stride, pad, what, "height")
    W_out = conv_output_size(W, WW, stride, pad, what, "width")
    return N, C, H, W, F, HH, WW, stride, pad, H_out, W_out


def check_conv_dout(dout, x, w, conv_param, what="conv backward"):
    """Raise ValueError unless dout is shaped like the output of the convolution of x by w."""
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    expected = (N, F, conv_output_size(H, HH, stride, pad, what, "height"),
                conv_output_size(W, WW, stride, pad, what, "width"))
    if getattr(dout, "shape", None) != expected:
        raise ValueError(f"{what}: dout must be shaped like the forward output {expected}, "
                         f"got {getattr(dout, 'shape', type(dout).__name__)}")


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
    conv_output_size(H, PH, stride, 0, what, "height")
    conv_output_size(W, PW, stride, 0, what, "width")
    return N, C, H, W, int(PH), int(PW), int(stride)


def pool_shapes(x, pool_param, what="max pool"):
    """check_pool_inputs, plus the output sizes: (N, C, H, W, PH, PW, stride, H_out, W_out)."""
    N, C, H, W, PH, PW, stride = check_pool_inputs(x, pool_param, what)
    H_out = conv_output_size(H, PH, stride, 0, what, "height")
    W_out = conv_output_size(W, PW, stride, 0, what, "width")
    return N, C, H, W, PH, PW, stride, H_out, W_out


def check_pool_dout(dout, x, pool_param, what="max pool backward"):
    """Raise ValueError unless dout is shaped like the output of pooling x."""
    N, C, H, W = x.shape
    PH, PW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    expected = (N, C, conv_output_size(H, PH, stride, 0, what, "height"),
                conv_output_size(W, PW, stride, 0, what, "width"))
    if getattr(dout, "shape", None) != expected:
        raise ValueError(f"{what}: dout must be shaped like the forward output {expected}, "
                         f"got {getattr(dout, 'shape', type(dout).__name__)}")
