"""ConvNet architectures on paper: output shapes, memory, parameters and compute, layer by layer.

A network is an input shape and a list of layer specs (Conv, Pool, Norm, BatchNorm, FC,
GlobalAvgPool, and the blocks Inception and Residual). Shapes are written the way the lecture
writes them, height x width x depth: an input shape is (H, W, C), e.g. (227, 227, 3) for
AlexNet, and a fully connected layer's output is (units,). `summarize` walks the layers and
returns one Row per layer (the input first) with its output shape, its activations (values kept
in memory for one image on the forward pass), its weights and biases, and its multiply-adds for
one image (`macs`: CONV and FC layers; pooling, batchnorm, ReLU and the shortcut additions are
not multiply-adds and count 0); `format_table` prints the rows, `plot_summary` draws them.

    >>> print(format_table(summarize(ALEXNET)))

Students write the counting functions: conv_output_shape, pool_output_shape, same_pad,
conv_param_count, fc_param_count, conv_macs and receptive_field. Everything else is given.
"""
import math
from dataclasses import dataclass
from typing import ClassVar, Optional

FLOAT32_BYTES = 4


def _volume(in_shape, what):
    """Check that in_shape is an (H, W, C) volume of positive ints; return it as a tuple."""
    shape = tuple(in_shape)
    if len(shape) != 3 or any(int(d) != d or d < 1 for d in shape):
        hint = "; a CONV, POOL or NORM layer cannot follow an FC layer" if len(shape) == 1 else ""
        raise ValueError(f"{what} needs an H x W x C input volume of positive integers, got "
                         f"{format_shape(shape) or '()'}{hint}")
    return tuple(int(d) for d in shape)


# --------------------------------------------------------------------------------------------
# The student functions
# --------------------------------------------------------------------------------------------
def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
    """Output shape of a convolutional layer of `filters` square filters on an input volume.

    Inputs:
    - in_shape: (H, W, C) tuple of ints, the input volume.
    - filters: int K, the number of filters (the output depth).
    - size: int F, each filter is F x F x C (filters always span the input's full depth).
    - stride: int S >= 1; pad: int P >= 0 zeros added on each side.
    Returns: (H_out, W_out, K), a tuple of ints: how many positions the filter takes along the
    height and along the width, and the depth.
    Raises ValueError when the filter does not fit: when a count would not be a whole number, or
    when the filter is larger than the padded input. The message shows the arithmetic with the
    number it came to (e.g. 2.33 for a 7x7 input, a 3x3 filter and stride 3) and says what to change.
    """
    H, W, C = _volume(in_shape, "CONV")
    out_shape = None
    # TODO: count the filter's positions along each axis. Think of the padded input's length,
    # where the first window starts, where the last one must end, and how far apart they are.
    # Do the arithmetic yourself (no helper): raise the ValueError described above when a
    # count is not a whole number or the filter does not fit at all.
    ### BEGIN SOLUTION
    def positions(n, axis):
        padded = n + 2 * pad
        if size > padded:
            raise ValueError(f"CONV: the {axis} filter ({size}) is larger than the padded input "
                             f"({n} + 2*{pad} = {padded}); use a smaller filter or more padding")
        if (padded - size) % stride:
            raise ValueError(f"CONV: the {axis} positions do not fit: ({n} + 2*{pad} - {size}) / {stride} + 1"
                             f" = {(padded - size) / stride + 1:.2f}, not a whole number; change the "
                             "stride or the padding")
        return (padded - size) // stride + 1

    out_shape = (positions(H, "height"), positions(W, "width"), filters)
    ### END SOLUTION
    return out_shape


def pool_output_shape(in_shape, size, stride):
    """Output shape of a pooling layer (F x F windows, no padding) on an input volume.

    Inputs:
    - in_shape: (H, W, C) tuple of ints.
    - size: int F, the window is F x F; stride: int S >= 1.
    Returns: (H_out, W_out, C), a tuple of ints; pooling acts on each depth slice separately.
    Raises ValueError, showing the arithmetic and the number it came to (e.g. 2.50 for 3x3
    windows at stride 2 on 6x6), when the windows do not fit.
    """
    H, W, C = _volume(in_shape, "POOL")
    out_shape = None
    # TODO: the same counting as a convolution's, with no padding; what happens to the depth?
    # Do the arithmetic here too, and raise the ValueError when the windows do not fit.
    ### BEGIN SOLUTION
    sizes = []
    for n, axis in ((H, "height"), (W, "width")):
        steps, left = divmod(n - size, stride)
        if n < size or left:
            raise ValueError(f"POOL: {size}x{size} windows at stride {stride} do not fit the {axis} {n}: "
                             f"({n} + 2*0 - {size}) / {stride} + 1 = {(n - size) / stride + 1:.2f}; "
                             "change the window or the stride")
        sizes.append(steps + 1)
    out_shape = (sizes[0], sizes[1], C)
    ### END SOLUTION
    return out_shape


def same_pad(size):
    """The zero padding that keeps the height and width of a stride-1 convolution.

    Inputs: size, int F >= 1, the filters are F x F.
    Returns: int P, the zeros to add on each side so that an N x N input gives an N x N output
    at stride 1, whatever N is.
    Raises ValueError, saying why, for an even F: no whole number of zeros works then.
    """
    _positive_int("same_pad", "size", size)
    pad = None
    # TODO: write down the output size at stride 1 with padding P, ask when it equals the input
    # size, and solve for P. When is that not a whole number?
    ### BEGIN SOLUTION
    if size % 2 == 0:
        raise ValueError(f"same_pad: a {size}x{size} filter would need {(size - 1) / 2} zeros on each "
                         "side; no whole padding keeps the size with an even filter, use an odd size")
    pad = (size - 1) // 2
    ### END SOLUTION
    return pad


def conv_param_count(in_shape, filters, size):
    """Learnable parameters of a convolutional layer, weights and biases counted apart.

    Inputs:
    - in_shape: (H, W, C) tuple of ints, the input volume (only its depth C matters).
    - filters: int K; size: int F (filters are F x F x C).
    Returns: (weights, biases), two ints.
    """
    H, W, C = _volume(in_shape, "CONV")
    weights, biases = None, None
    # TODO: how many numbers make up one filter, and how many filters are there? Does the
    # input's height or width matter?
    ### BEGIN SOLUTION
    weights = size * size * C * filters
    biases = filters
    ### END SOLUTION
    return weights, biases


def fc_param_count(in_shape, units):
    """Learnable parameters of a fully connected layer, weights and biases counted apart.

    Inputs:
    - in_shape: tuple of ints, the input: a volume (H, W, C), flattened, or (D,) from an FC layer.
    - units: int M, the number of outputs.
    Returns: (weights, biases), two ints.
    """
    shape = tuple(int(d) for d in in_shape)
    weights, biases = None, None
    # TODO: every output is connected to every input value, plus one bias per output.
    ### BEGIN SOLUTION
    weights = math.prod(shape) * units
    biases = units
    ### END SOLUTION
    return weights, biases


def conv_macs(in_shape, filters, size, stride=1, pad=0):
    """Multiply-adds of a convolutional layer for one image (the biases' additions not counted).

    Inputs: as conv_output_shape: in_shape (H, W, C), filters K, size F, stride S, pad P.
    Returns: int, the number of multiply-adds the forward pass of one image needs.
    Raises ValueError, as conv_output_shape does, when the filter does not fit.
    """
    H, W, C = _volume(in_shape, "CONV")
    macs = None
    # TODO: what does one output value cost, and how many output values are there? Use your
    # conv_output_shape.
    ### BEGIN SOLUTION
    H_out, W_out, K = conv_output_shape(in_shape, filters, size, stride, pad)
    macs = H_out * W_out * K * size * size * C
    ### END SOLUTION
    return macs


def receptive_field(layers):
    """The receptive field of one output value of a stack of sliding windows, on the input.

    Inputs: layers, a sequence of (size, stride) pairs, first layer first: F x F windows (a
    convolution's filters or a pool's windows) at stride S.
    Returns: int R: one value of the last layer's output depends on an R x R region of the input
    (1 for no layers at all). Padding does not change it.
    """
    layers = list(layers)
    for size, stride in layers:
        _positive_int("receptive_field", "size", size)
        _positive_int("receptive_field", "stride", stride)
    rf = None
    # TODO: go through the layers from the first: how many more input pixels does one more
    # window position of a layer cover, and how far apart on the input are neighbouring
    # positions of the layer after it?
    ### BEGIN SOLUTION
    rf, step = 1, 1
    for size, stride in layers:
        rf += (size - 1) * step
        step *= stride
    ### END SOLUTION
    return rf


# --------------------------------------------------------------------------------------------
# Layer specs
# --------------------------------------------------------------------------------------------
def _positive_int(layer, field, value, low=1):
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{layer}: {field} must be an integer >= {low}, got {value!r}")


def _fit(shape_of, in_shape, stride):
    """The input that the windows of shape_of sweep: in_shape itself when they fit, else in_shape
    without its last rows and columns (fewer than `stride` of each) as the frameworks round the
    count down. Raises the error of the untrimmed input when no trim fits either."""
    H, W, C = _volume(in_shape, "a layer")
    first_error = None
    for dh in range(stride):
        for dw in range(stride):
            if H - dh >= 1 and W - dw >= 1:
                try:
                    shape_of((H - dh, W - dw, C))
                    return (H - dh, W - dw, C)
                except ValueError as err:
                    first_error = first_error or err
    raise first_error


class _NoWeights:
    """Layers with no parameters, no multiply-adds and no depth of their own (pooling, normalisation;
    BatchNorm counts its scale and shift)."""

    depth: ClassVar[int] = 0

    def param_count(self, in_shape):
        return 0, 0

    def macs(self, in_shape):
        return 0


@dataclass(frozen=True)
class Conv:
    """A convolutional layer: `filters` filters of size x size, stride, zero padding pad.

    bias: False for a convolution followed by batchnorm (ResNet's), whose shift does its job.
    groups: the paper's AlexNet split some layers over two GPUs, each filter seeing half of the
    input's depth (groups=2). floor: round the output size down when the windows do not fit, as
    the frameworks do (the last rows and columns are left out); by default it is an error.
    """

    filters: int
    size: int
    stride: int = 1
    pad: int = 0
    name: Optional[str] = None
    bias: bool = True
    groups: int = 1
    floor: bool = False
    kind: ClassVar[str] = "CONV"
    depth: ClassVar[int] = 1

    def __post_init__(self):
        for field, low in (("filters", 1), ("size", 1), ("stride", 1), ("pad", 0), ("groups", 1)):
            _positive_int("Conv", field, getattr(self, field), low)
        if self.filters % self.groups:
            raise ValueError(f"Conv: {self.filters} filters cannot be split into {self.groups} groups")

    def describe(self):
        plural = "s" if self.filters != 1 else ""
        extra = "".join([", no bias" if not self.bias else "", f", {self.groups} groups" if self.groups > 1 else "",
                         ", rounded down" if self.floor else ""])
        return f"{self.filters} {self.size}x{self.size} filter{plural}, stride {self.stride}, pad {self.pad}{extra}"

    def _group_input(self, in_shape):
        """The volume one group of filters sees: the input with 1/groups of its depth."""
        H, W, C = _volume(in_shape, "CONV")
        if C % self.groups:
            raise ValueError(f"CONV: an input depth of {C} cannot be split into {self.groups} groups")
        return (H, W, C // self.groups)

    def _fitted(self, in_shape):
        """The input the windows sweep: all of it, or, with floor, what is left after rounding down."""
        if not self.floor:
            return tuple(in_shape)
        return _fit(lambda s: conv_output_shape(s, self.filters, self.size, self.stride, self.pad),
                    in_shape, self.stride)

    def output_shape(self, in_shape):
        return conv_output_shape(self._fitted(in_shape), self.filters, self.size, self.stride, self.pad)

    def param_count(self, in_shape):
        weights, biases = conv_param_count(self._group_input(in_shape), self.filters, self.size)
        return weights, biases if self.bias else 0

    def macs(self, in_shape):
        return conv_macs(self._group_input(self._fitted(in_shape)), self.filters, self.size, self.stride, self.pad)


@dataclass(frozen=True)
class Pool(_NoWeights):
    """A (max) pooling layer: size x size windows at the given stride.

    pad: frameworks' padding for pooling (ResNet's first pool: 3x3, stride 2, pad 1), which no
    window's maximum ever takes; floor: round the output size down as Conv(floor=True) does.
    Pooling has no parameters, and its comparisons are not multiply-adds: 0 for both.
    """

    size: int = 2
    stride: int = 2
    name: Optional[str] = None
    pad: int = 0
    floor: bool = False
    kind: ClassVar[str] = "POOL"

    def __post_init__(self):
        _positive_int("Pool", "size", self.size)
        _positive_int("Pool", "stride", self.stride)
        _positive_int("Pool", "pad", self.pad, 0)

    def describe(self):
        extra = (f", pad {self.pad}" if self.pad else "") + (", rounded down" if self.floor else "")
        return f"{self.size}x{self.size} windows, stride {self.stride}{extra}"

    def output_shape(self, in_shape):
        H, W, C = _volume(in_shape, "POOL")
        padded = (H + 2 * self.pad, W + 2 * self.pad, C)
        if self.floor:
            padded = _fit(lambda s: pool_output_shape(s, self.size, self.stride), padded, self.stride)
        return pool_output_shape(padded, self.size, self.stride)


@dataclass(frozen=True)
class GlobalAvgPool(_NoWeights):
    """Global average pooling: each H x W activation map becomes its mean, 1 x 1 x C out.

    No parameters, and only additions (H*W per map), so 0 multiply-adds. It replaces the big FC
    layers of AlexNet and VGG in GoogLeNet and ResNet.
    """

    name: Optional[str] = None
    kind: ClassVar[str] = "POOL"

    def describe(self):
        return "global average, no parameters"

    def output_shape(self, in_shape):
        return (1, 1, _volume(in_shape, "global average POOL")[2])


@dataclass(frozen=True)
class Norm(_NoWeights):
    """A normalisation layer as in AlexNet: same shape out as in, no parameters."""

    name: Optional[str] = None
    kind: ClassVar[str] = "NORM"

    def describe(self):
        return "normalisation, no parameters"

    def output_shape(self, in_shape):
        return _volume(in_shape, "NORM")


@dataclass(frozen=True)
class BatchNorm(_NoWeights):
    """Spatial batch normalisation: a scale and a shift per channel, learned.

    Counted as C weights (the scale) and C biases (the shift); the running mean and variance are
    statistics, not parameters. At test time it folds into the convolution before it: 0
    multiply-adds of its own.
    """

    name: Optional[str] = None
    kind: ClassVar[str] = "BN"

    def describe(self):
        return "batchnorm, a scale and a shift per channel"

    def output_shape(self, in_shape):
        return _volume(in_shape, "BN")

    def param_count(self, in_shape):
        C = _volume(in_shape, "BN")[2]
        return C, C


@dataclass(frozen=True)
class FC:
    """A fully connected layer with `units` outputs; a volume input is flattened."""

    units: int
    name: Optional[str] = None
    kind: ClassVar[str] = "FC"
    depth: ClassVar[int] = 1

    def __post_init__(self):
        _positive_int("FC", "units", self.units)

    def describe(self):
        return f"{self.units} units"

    def output_shape(self, in_shape):
        return (self.units,)

    def param_count(self, in_shape):
        return fc_param_count(in_shape, self.units)

    def macs(self, in_shape):
        return fc_param_count(in_shape, self.units)[0]  # one multiply-add per weight


# --------------------------------------------------------------------------------------------
# Blocks: paths of layers, concatenated (Inception) or added (residual)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PathCount:
    """What a path of layers does to one input: its output and its totals."""

    shape: tuple
    weights: int
    biases: int
    macs: int
    activations: int  # every layer's output on the path
    depth: int        # layers with weights, one after the other


def walk_path(layers, in_shape):
    """Run the layer specs one after the other from in_shape; return their PathCount."""
    shape, weights, biases, macs, values, depth = tuple(in_shape), 0, 0, 0, 0, 0
    for layer in layers:
        w, b = layer.param_count(shape)
        macs += layer_macs(layer, shape)
        shape = tuple(layer.output_shape(shape))
        weights, biases, values = weights + w, biases + b, values + math.prod(shape)
        depth += getattr(layer, "depth", 0)
    return PathCount(shape, weights, biases, macs, values, depth)


def layer_macs(layer, in_shape):
    """A layer spec's multiply-adds; 0 for a spec written before they were counted."""
    return layer.macs(in_shape) if hasattr(layer, "macs") else 0


class _Block:
    """Given code shared by the blocks: subclasses define paths(in_shape) and combine(shapes)."""

    def _counts(self, in_shape):
        _volume(in_shape, self.kind)
        return [walk_path(path, in_shape) for path in self.paths(in_shape)]

    def output_shape(self, in_shape):
        return self.combine([c.shape for c in self._counts(in_shape)])

    def param_count(self, in_shape):
        counts = self._counts(in_shape)
        return sum(c.weights for c in counts), sum(c.biases for c in counts)

    def macs(self, in_shape):
        return sum(c.macs for c in self._counts(in_shape))

    def inner_activations(self, in_shape):
        """Values the block keeps inside for one image: every layer's output on every path."""
        return sum(c.activations for c in self._counts(in_shape))

    def path_depth(self, in_shape):
        """Layers with weights on the block's longest path."""
        return max(c.depth for c in self._counts(in_shape))


@dataclass(frozen=True)
class Inception(_Block):
    """GoogLeNet's inception module: four paths side by side, their outputs concatenated in depth.

    1x1 convs (c1); 1x1 reduce (c3r) then 3x3 (c3); 1x1 reduce (c5r) then 5x5 (c5); 3x3 max pool
    (stride 1, pad 1) then a 1x1 projection (pool_proj). With reduce=False, the naive module:
    the 3x3 and 5x5 convs see the whole input, and the pool passes the input's depth through.
    """

    c1: int
    c3r: int
    c3: int
    c5r: int
    c5: int
    pool_proj: int
    reduce: bool = True
    name: Optional[str] = None
    kind: ClassVar[str] = "INCEPTION"

    @property
    def depth(self):
        return 2 if self.reduce else 1

    def describe(self):
        if not self.reduce:
            return f"naive: 1x1 {self.c1}, 3x3 {self.c3}, 5x5 {self.c5}, 3x3 pool"
        return (f"1x1 {self.c1}; 1x1 {self.c3r} -> 3x3 {self.c3}; 1x1 {self.c5r} -> 5x5 {self.c5}; "
                f"pool -> 1x1 {self.pool_proj}")

    def paths(self, in_shape):
        pool = Pool(3, 1, pad=1)
        if not self.reduce:
            return [(Conv(self.c1, 1),), (Conv(self.c3, 3, pad=1),), (Conv(self.c5, 5, pad=2),), (pool,)]
        return [(Conv(self.c1, 1),), (Conv(self.c3r, 1), Conv(self.c3, 3, pad=1)),
                (Conv(self.c5r, 1), Conv(self.c5, 5, pad=2)), (pool, Conv(self.pool_proj, 1))]

    def combine(self, shapes):
        if len({s[:2] for s in shapes}) != 1:
            raise ValueError(f"INCEPTION: the paths' outputs differ in height and width: {shapes}")
        return shapes[0][:2] + (sum(s[2] for s in shapes),)


@dataclass(frozen=True)
class Residual(_Block):
    """A residual block: a path of convolutions (each followed by batchnorm) plus a shortcut,
    added, then ReLU.

    Basic (ResNet-18/34): 3x3 conv (stride) - BN - ReLU - 3x3 conv - BN; `filters` out.
    Bottleneck (ResNet-50/101/152): 1x1 conv - BN - ReLU - 3x3 conv - BN - ReLU - 1x1 conv - BN,
    `filters` wide inside and 4*filters out. Where the stride of a downsampling bottleneck sits:
    the paper's first 1x1 (stride_at="1x1") or torchvision's 3x3 ("3x3", "ResNet v1.5"). The
    parameters are the same, and so are the 3x3's multiply-adds (its output is the smaller map
    either way), but with the stride in the 3x3 the first 1x1 runs on the 4x larger input map,
    and the 3x3 reads every position instead of skipping three in four: more compute (ResNet-152:
    11.51 G instead of 11.28 G), for a slightly better accuracy as torchvision reports it.
    The shortcut is the identity, or a 1x1 conv with the stride then BN when the shape changes
    (the paper's option B). Convolutions have no bias: the batchnorm's shift does that job.
    """

    filters: int
    stride: int = 1
    bottleneck: bool = False
    stride_at: str = "1x1"
    name: Optional[str] = None
    kind: ClassVar[str] = "RES"

    EXPANSION: ClassVar[int] = 4

    def __post_init__(self):
        _positive_int("Residual", "filters", self.filters)
        _positive_int("Residual", "stride", self.stride)
        if self.stride_at not in ("1x1", "3x3"):
            raise ValueError(f"Residual: stride_at must be '1x1' (the paper) or '3x3' (torchvision), "
                             f"got {self.stride_at!r}")

    @property
    def depth(self):
        return 3 if self.bottleneck else 2

    @property
    def out_depth(self):
        return self.filters * (self.EXPANSION if self.bottleneck else 1)

    def describe(self):
        if self.bottleneck:
            return (f"bottleneck 1x1 {self.filters}, 3x3 {self.filters}, 1x1 {self.out_depth}, "
                    f"stride {self.stride}" + (f" at the {self.stride_at}" if self.stride > 1 else ""))
        return f"basic 3x3 {self.filters}, 3x3 {self.filters}, stride {self.stride}"

    def paths(self, in_shape):
        def conv1x1(k, stride=1):
            return Conv(k, 1, stride, pad=0, bias=False, floor=True)

        def conv3x3(k, stride=1):
            return Conv(k, 3, stride, pad=1, bias=False, floor=True)

        k, s = self.filters, self.stride
        if self.bottleneck:
            s1, s3 = (s, 1) if self.stride_at == "1x1" else (1, s)
            main = (conv1x1(k, s1), BatchNorm(), conv3x3(k, s3), BatchNorm(), conv1x1(self.out_depth), BatchNorm())
        else:
            main = (conv3x3(k, s), BatchNorm(), conv3x3(k), BatchNorm())
        if s == 1 and _volume(in_shape, "RES")[2] == self.out_depth:
            return [main]
        return [main, (conv1x1(self.out_depth, s), BatchNorm())]

    def combine(self, shapes):
        if len(shapes) == 2 and shapes[0] != shapes[1]:
            raise ValueError(f"RES: the path gives {format_shape(shapes[0])} but the shortcut "
                             f"{format_shape(shapes[1])}")
        return shapes[0]

    def inner_activations(self, in_shape):
        return super().inner_activations(in_shape) + math.prod(self.output_shape(in_shape))  # + the sum

    def has_projection(self, in_shape):
        return len(self.paths(in_shape)) == 2


@dataclass(frozen=True)
class Network:
    """A network on paper: a name, an input shape (H, W, C) and a tuple of layer specs.

    Unnamed layers are numbered as AlexNet's are: CONV and FC layers share one count (the
    weight layers: CONV1..CONV5, FC6..FC8), every other kind (POOL, NORM, BN, ...) a count of its own.
    """

    name: str
    input_shape: tuple
    layers: tuple
    note: str = ""

    def __post_init__(self):
        _volume(self.input_shape, f"{self.name}: the input")
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))

    def named_layers(self):
        """[(name, layer)] in order, with the numbering described above."""
        counts, named = {}, []
        for layer in self.layers:
            group = "weights" if layer.kind in ("CONV", "FC") else layer.kind
            counts[group] = counts.get(group, 0) + 1
            named.append((layer.name or f"{layer.kind}{counts[group]}", layer))
        return named


# --------------------------------------------------------------------------------------------
# Rows, totals and the table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One line of a summary: a layer's output shape, activations, parameters and multiply-adds.

    inner: values a block keeps inside for one image (its layers' outputs), beyond its output;
    depth: layers with weights on the longest path through the row (1 for CONV and FC).
    """

    name: str
    kind: str
    spec: str
    shape: tuple
    weights: int = 0
    biases: int = 0
    macs: int = 0
    inner: int = 0
    depth: int = 0

    @property
    def activations(self):
        """Values in the layer's output (and inside it, for a block), per image."""
        return math.prod(self.shape) + self.inner

    @property
    def params(self):
        return self.weights + self.biases


def _rows_total(field, doc):
    """A property of Summary: the sum of `field` over its rows."""
    return property(lambda self: sum(getattr(r, field) for r in self.rows), doc=doc)


@dataclass(frozen=True)
class Summary:
    """The rows of a network (the input first) and their totals; bytes at bytes_per_value."""

    name: str
    rows: tuple
    bytes_per_value: int = FLOAT32_BYTES

    activations = _rows_total("activations", "Total values kept for one image on the forward pass, "
                                             "input included.")
    weights = _rows_total("weights", "Weights of all layers.")
    biases = _rows_total("biases", "Biases of all layers.")
    macs = _rows_total("macs", "Multiply-adds of the forward pass of one image (CONV and FC layers).")
    depth = _rows_total("depth", "Layers with weights one after the other: 16 for VGG-16, 152 for "
                                 "ResNet-152.")

    @property
    def params(self):
        return self.weights + self.biases

    @property
    def activation_bytes(self):
        return self.activations * self.bytes_per_value

    @property
    def param_bytes(self):
        return self.params * self.bytes_per_value

    def row(self, name):
        """The row called `name` (e.g. 'CONV1'); KeyError listing the names if there is none."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"{self.name} has no layer {name!r}; its rows are {[r.name for r in self.rows]}")


def _row(name, layer, shape):
    """The Row of one layer spec on an input of the given shape."""
    out = tuple(layer.output_shape(shape))
    weights, biases = layer.param_count(shape)
    inner = layer.inner_activations(shape) if hasattr(layer, "inner_activations") else 0
    depth = layer.path_depth(shape) if hasattr(layer, "path_depth") else getattr(layer, "depth", 0)
    return Row(name, layer.kind, layer.describe(), out, weights, biases, layer_macs(layer, shape), inner, depth)


def summarize(net, bytes_per_value=FLOAT32_BYTES):
    """Walk a Network layer by layer.

    Inputs: net, a Network; bytes_per_value, int, the size of one value (4 for float32).
    Returns: a Summary whose rows are the input and then every layer.
    Raises ValueError naming the layer and its input shape when a layer does not fit.
    """
    _positive_int("summarize", "bytes_per_value", bytes_per_value)
    shape = net.input_shape
    rows = [Row("INPUT", "INPUT", "", shape)]
    for name, layer in net.named_layers():
        try:
            rows.append(_row(name, layer, shape))
        except ValueError as err:
            raise ValueError(f"{net.name} {name} ({layer.describe()}), input "
                             f"{format_shape(shape)}: {err}") from err
        shape = rows[-1].shape
    return Summary(net.name, tuple(rows), bytes_per_value)


def format_shape(shape):
    """'55x55x96' for (55, 55, 96), '4096' for (4096,)."""
    return "x".join(str(d) for d in shape)


def format_bytes(n):
    """A byte count in decimal units: 1,234 -> '1.2 KB', 60,950,432 -> '61.0 MB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def format_count(n):
    """A count in decimal units: 999 -> '999', 105,415,200 -> '105.4M', 15,470,264,320 -> '15.47G'."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{n}"


def format_table(summary):
    """The rows as an aligned text table with thousands separators, then the totals."""
    header = ("layer", "spec", "output", "activations", "memory", "weights", "biases", "params", "mult-adds")
    lines = [(r.name, r.spec, format_shape(r.shape), f"{r.activations:,}",
              format_bytes(r.activations * summary.bytes_per_value),
              f"{r.weights:,}", f"{r.biases:,}", f"{r.params:,}", format_count(r.macs)) for r in summary.rows]
    total = ("TOTAL", "", "", f"{summary.activations:,}", format_bytes(summary.activation_bytes),
             f"{summary.weights:,}", f"{summary.biases:,}", f"{summary.params:,}", format_count(summary.macs))
    widths = [max(len(line[i]) for line in [header, total, *lines]) for i in range(len(header))]

    def fmt(cells):  # text columns to the left, numbers to the right
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(fmt(header))
    return "\n".join([f"{summary.name} ({summary.bytes_per_value} bytes per value)", fmt(header), rule,
                      *map(fmt, lines), rule, fmt(total),
                      f"memory: {summary.activations:,} values = {summary.activation_bytes:,} bytes "
                      f"({format_bytes(summary.activation_bytes)}) per image, forward pass only; "
                      f"parameters: {summary.params:,} = {format_bytes(summary.param_bytes)}; "
                      f"compute: {summary.macs:,} multiply-adds ({format_count(summary.macs)}) per image; "
                      f"{summary.depth} layers with weights"])


def print_table(net, bytes_per_value=FLOAT32_BYTES):
    """Print the table of a Network (or of a Summary) and return its Summary."""
    summary = net if isinstance(net, Summary) else summarize(net, bytes_per_value)
    print(format_table(summary))
    return summary


def plot_summary(summary, axes=None, log_memory=False, log_params=True, log_macs=False):
    """Bar charts, one bar per row: activations (memory per image), parameters, multiply-adds.

    Inputs: summary, a Summary; axes, three matplotlib axes (or two: memory and parameters
    only) or None for a new figure; log_memory, log_params, log_macs: bool, a log scale for that
    chart (parameters span 1e3 to 1e8 in VGG-16).
    Returns: the axes.
    """
    import matplotlib.pyplot as plt

    rows = summary.rows
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    x = range(len(rows))
    charts = ((lambda r: r.activations, "activations per image", "tab:blue", log_memory),
              (lambda r: r.params, "parameters", "tab:orange", log_params),
              (lambda r: r.macs, "multiply-adds per image", "tab:green", log_macs))
    for ax, (value, label, color, log) in zip(axes, charts):
        ax.bar(x, [value(r) for r in rows], color=color)
        ax.set_ylabel(label + (" (log scale)" if log else ""))
        if log:
            ax.set_yscale("log")
    axes[-1].set_xticks(list(x))
    axes[-1].set_xticklabels([r.name for r in rows], rotation=90)
    what = "memory, parameters and compute" if len(axes) > 2 else "memory and parameters"
    axes[0].set_title(f"{summary.name}: {what} per layer")
    return axes


# --------------------------------------------------------------------------------------------
# The lecture's case studies, in its order
# --------------------------------------------------------------------------------------------
LENET5 = Network(
    "LeNet-5", (32, 32, 1),
    (Conv(6, 5), Pool(2, 2), Conv(16, 5), Pool(2, 2), Conv(120, 5), FC(84), FC(10)),
    note="LeCun et al. 1998: 5x5 convs at stride 1, 2x2 subsampling at stride 2. Here the "
         "subsampling is a parameter-free pool (the original's had a trainable scale and bias "
         "per map) and the output layer an FC layer of 10 (the original's were RBF units).")


def _alexnet_layers(conv1, conv2, widths, groups=(1, 1, 1)):
    """AlexNet's pattern with the given CONV1 and CONV2 specs, CONV3-5 widths and CONV3-5 groups."""
    return (conv1, Pool(3, 2), Norm(), conv2, Pool(3, 2), Norm(),
            *(Conv(k, 3, stride=1, pad=1, groups=g) for k, g in zip(widths, groups)), Pool(3, 2),
            FC(4096), FC(4096), FC(1000))


ALEXNET = Network(
    "AlexNet", (227, 227, 3),
    _alexnet_layers(Conv(96, 11, stride=4, pad=0), Conv(256, 5, stride=1, pad=2), (384, 384, 256)),
    note="Krizhevsky et al. 2012, the lecture's simplified one-tower version on 227x227x3.")

ALEXNET_TWO_GPU = Network(
    "AlexNet (two GPUs)", (227, 227, 3),
    _alexnet_layers(Conv(96, 11, stride=4, pad=0), Conv(256, 5, stride=1, pad=2, groups=2),
                    (384, 384, 256), groups=(1, 2, 2)),
    note="The paper's network: the same layers split over two GPUs, where CONV2, CONV4 and CONV5 "
         "see only the half of the depth on their own GPU (groups=2); CONV3 and the FC layers "
         "see everything. That is the paper's ~60M parameters, against 62.4M for one tower.")

ZFNET = Network(
    "ZFNet", (227, 227, 3),
    _alexnet_layers(Conv(96, 7, stride=2, pad=0), Conv(256, 5, stride=2, pad=1), (512, 1024, 512)),
    note="Zeiler & Fergus 2013: AlexNet with CONV1 7x7 stride 2 and CONV3,4,5 of 512, 1024, 512 "
         "filters. The smaller stride doubles CONV1's output (111x111); so that POOL2 sees "
         "AlexNet's 27x27 again, CONV2 runs at stride 2 with pad 1 here (our choice, on the "
         "lecture's 227 input).")


def _vgg_block(filters, convs):
    return tuple(Conv(filters, 3, stride=1, pad=1) for _ in range(convs)) + (Pool(2, 2),)


def _vgg(convs_per_block):
    widths = (64, 128, 256, 512, 512)
    return sum((_vgg_block(k, n) for k, n in zip(widths, convs_per_block)), ()) + (FC(4096), FC(4096), FC(1000))


VGG16 = Network(
    "VGG-16", (224, 224, 3), _vgg((2, 2, 3, 3, 3)),
    note="Simonyan & Zisserman 2014: only 3x3 convs at stride 1 pad 1 and 2x2 max pools at stride "
         "2. Numbered by weight layer, the FC layers are FC14..FC16 (the slide says FC6 for the "
         "first, after AlexNet).")

VGG19 = Network(
    "VGG-19", (224, 224, 3), _vgg((2, 2, 4, 4, 4)),
    note="VGG-16 with a fourth 3x3 conv in each of the last three blocks: the 'VGG' ResNet's "
         "paper compares its 152 layers with.")

GOOGLENET = Network(
    "GoogLeNet", (224, 224, 3),
    (Conv(64, 7, stride=2, pad=3, floor=True, name="CONV1"), Pool(3, 2, pad=1, floor=True), Norm(),
     Conv(64, 1, name="CONV2_REDUCE"), Conv(192, 3, pad=1, name="CONV2"), Norm(), Pool(3, 2, pad=1, floor=True),
     Inception(64, 96, 128, 16, 32, 32, name="INC3a"), Inception(128, 128, 192, 32, 96, 64, name="INC3b"),
     Pool(3, 2, pad=1, floor=True),
     Inception(192, 96, 208, 16, 48, 64, name="INC4a"), Inception(160, 112, 224, 24, 64, 64, name="INC4b"),
     Inception(128, 128, 256, 24, 64, 64, name="INC4c"), Inception(112, 144, 288, 32, 64, 64, name="INC4d"),
     Inception(256, 160, 320, 32, 128, 128, name="INC4e"), Pool(3, 2, pad=1, floor=True),
     Inception(256, 160, 320, 32, 128, 128, name="INC5a"), Inception(384, 192, 384, 48, 128, 128, name="INC5b"),
     GlobalAvgPool(name="AVGPOOL"), FC(1000, name="FC")),
    note="Szegedy et al. 2014, table 1, without the two auxiliary classifiers used only in "
         "training, and without dropout (no parameters). The stem's convs have 9,408 and 114,688 "
         "weights; the paper's table prints 2.7K for the first, which no 7x7x3x64 layer has.")


def _resnet(name, blocks, bottleneck, stride_at="1x1", note=""):
    layers = [Conv(64, 7, stride=2, pad=3, bias=False, floor=True, name="CONV1"), BatchNorm(),
              Pool(3, 2, pad=1, floor=True)]
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        layers += [Residual(filters, 2 if (i == 0 and stage > 2) else 1, bottleneck, stride_at,
                            name=f"CONV{stage}_{i + 1}") for i in range(count)]
    return Network(name, (224, 224, 3), tuple(layers) + (GlobalAvgPool(name="AVGPOOL"), FC(1000, name="FC")), note)


RESNET18 = _resnet(
    "ResNet-18", (2, 2, 2, 2), bottleneck=False,
    note="He et al. 2015, table 1: two basic blocks per stage. torchvision's count: 11,689,512 "
         "parameters; the paper's table: 1.8 G multiply-adds (its 'FLOPs').")

RESNET34 = _resnet(
    "ResNet-34", (3, 4, 6, 3), bottleneck=False,
    note="He et al. 2015, table 1: basic blocks, projection shortcuts where the shape changes "
         "(option B), batchnorm after every conv, convs without bias.")

RESNET50 = _resnet(
    "ResNet-50", (3, 4, 6, 3), bottleneck=True,
    note="He et al. 2015, table 1: ResNet-34's layout with bottleneck blocks, the stride in the "
         "first 1x1 as the paper has it: 25,557,032 parameters (torchvision's count), 3.8 G "
         "multiply-adds (the paper's); 4.1 G with the stride in the 3x3 (RESNET50_V1_5).")

RESNET50_V1_5 = _resnet(
    "ResNet-50 (stride in the 3x3)", (3, 4, 6, 3), bottleneck=True, stride_at="3x3",
    note="torchvision's ResNet-50: the same parameters, 4.1 G multiply-adds.")

RESNET152 = _resnet(
    "ResNet-152", (3, 8, 36, 3), bottleneck=True,
    note="He et al. 2015, table 1: bottleneck blocks with the stride of a downsampling block in its "
         "first 1x1 conv, as the paper has it (torchvision puts it in the 3x3: RESNET152_V1_5).")

RESNET152_V1_5 = _resnet(
    "ResNet-152 (stride in the 3x3)", (3, 8, 36, 3), bottleneck=True, stride_at="3x3",
    note="torchvision's ResNet-152: the same parameters, the stride moved to the 3x3 conv, so "
         "the first 1x1 of each downsampling block runs on the 4x larger map.")

ALPHAGO_POLICY = Network(
    "AlphaGo policy network", (19, 19, 48),
    (Conv(192, 5, stride=1, pad=2),) + tuple(Conv(192, 3, stride=1, pad=1) for _ in range(11))
    + (Conv(1, 1, stride=1, pad=0),),
    note="Silver et al. 2016: 48 feature planes of the 19x19 board in, one 19x19 map of move "
         "probabilities out (a softmax over the map's 361 values).")

CASE_STUDIES = (LENET5, ALEXNET, ZFNET, VGG16, GOOGLENET, RESNET34, RESNET152, ALPHAGO_POLICY)
