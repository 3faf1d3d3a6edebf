"""ConvNet architectures on paper: output shapes, memory and parameters, layer by layer.

A network is an input shape and a list of layer specs (Conv, Pool, Norm, FC). Shapes are written
the way the lecture writes them, height x width x depth: an input shape is (H, W, C), e.g.
(227, 227, 3) for AlexNet, and a fully connected layer's output is (units,). `summarize` walks the
layers and returns one Row per layer (the input first) with its output shape, its activations
(values kept in memory for one image on the forward pass) and its weights and biases;
`format_table` prints the rows.

    >>> print(format_table(summarize(ALEXNET)))

Students write the four counting functions: conv_output_shape, pool_output_shape,
conv_param_count and fc_param_count. Everything else is given.
"""
import math
from dataclasses import dataclass
from typing import ClassVar, Optional

from .shapes import conv_output_size

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
# The four student functions
# --------------------------------------------------------------------------------------------
def conv_output_shape(in_shape, filters, size, stride=1, pad=0):
    """Output shape of a convolutional layer of `filters` square filters on an input volume.

    Inputs:
    - in_shape: (H, W, C) tuple of ints, the input volume.
    - filters: int K, the number of filters (the output depth).
    - size: int F, each filter is F x F x C (filters always span the input's full depth).
    - stride: int S >= 1; pad: int P >= 0 zeros added on each side.
    Returns: (H_out, W_out, K), a tuple of ints, with H_out = (H + 2P - F) / S + 1.
    Raises ValueError, showing the arithmetic, when the filter does not fit (e.g. 2.33).
    """
    H, W, C = _volume(in_shape, "CONV")
    out_shape = None
    # TODO: compute the output height and width with shapes.conv_output_size, which raises the
    # ValueError with the arithmetic when a size does not fit; the depth is the filter count.
    ### BEGIN SOLUTION
    out_shape = (conv_output_size(H, size, stride, pad, "CONV", "height"),
                 conv_output_size(W, size, stride, pad, "CONV", "width"),
                 filters)
    ### END SOLUTION
    return out_shape


def pool_output_shape(in_shape, size, stride):
    """Output shape of a pooling layer (F x F windows, no padding) on an input volume.

    Inputs:
    - in_shape: (H, W, C) tuple of ints.
    - size: int F, the window is F x F; stride: int S >= 1.
    Returns: (H_out, W_out, C), a tuple of ints; pooling acts on each depth slice separately.
    Raises ValueError, showing the arithmetic, when the windows do not fit.
    """
    H, W, C = _volume(in_shape, "POOL")
    out_shape = None
    # TODO: like a convolution with no padding, but the depth does not change.
    ### BEGIN SOLUTION
    out_shape = (conv_output_size(H, size, stride, 0, "POOL", "height"),
                 conv_output_size(W, size, stride, 0, "POOL", "width"),
                 C)
    ### END SOLUTION
    return out_shape


def conv_param_count(in_shape, filters, size):
    """Learnable parameters of a convolutional layer, weights and biases counted apart.

    Inputs:
    - in_shape: (H, W, C) tuple of ints, the input volume (only its depth C matters).
    - filters: int K; size: int F (filters are F x F x C).
    Returns: (weights, biases), two ints.
    """
    H, W, C = _volume(in_shape, "CONV")
    weights, biases = None, None
    # TODO: each filter has F*F*C weights and one bias.
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


# --------------------------------------------------------------------------------------------
# Layer specs
# --------------------------------------------------------------------------------------------
def _positive_int(layer, field, value, low=1):
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{layer}: {field} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class Conv:
    """A convolutional layer: `filters` filters of size x size, stride, zero padding pad."""

    filters: int
    size: int
    stride: int = 1
    pad: int = 0
    name: Optional[str] = None
    kind: ClassVar[str] = "CONV"

    def __post_init__(self):
        for field, low in (("filters", 1), ("size", 1), ("stride", 1), ("pad", 0)):
            _positive_int("Conv", field, getattr(self, field), low)

    def describe(self):
        plural = "s" if self.filters != 1 else ""
        return f"{self.filters} {self.size}x{self.size} filter{plural}, stride {self.stride}, pad {self.pad}"

    def output_shape(self, in_shape):
        return conv_output_shape(in_shape, self.filters, self.size, self.stride, self.pad)

    def param_count(self, in_shape):
        return conv_param_count(in_shape, self.filters, self.size)


@dataclass(frozen=True)
class Pool:
    """A (max) pooling layer: size x size windows at the given stride, no padding."""

    size: int = 2
    stride: int = 2
    name: Optional[str] = None
    kind: ClassVar[str] = "POOL"

    def __post_init__(self):
        _positive_int("Pool", "size", self.size)
        _positive_int("Pool", "stride", self.stride)

    def describe(self):
        return f"{self.size}x{self.size} windows, stride {self.stride}"

    def output_shape(self, in_shape):
        return pool_output_shape(in_shape, self.size, self.stride)

    def param_count(self, in_shape):
        return 0, 0


@dataclass(frozen=True)
class Norm:
    """A normalisation layer as in AlexNet: same shape out as in, no parameters."""

    name: Optional[str] = None
    kind: ClassVar[str] = "NORM"

    def describe(self):
        return "normalisation, no parameters"

    def output_shape(self, in_shape):
        return _volume(in_shape, "NORM")

    def param_count(self, in_shape):
        return 0, 0


@dataclass(frozen=True)
class FC:
    """A fully connected layer with `units` outputs; a volume input is flattened."""

    units: int
    name: Optional[str] = None
    kind: ClassVar[str] = "FC"

    def __post_init__(self):
        _positive_int("FC", "units", self.units)

    def describe(self):
        return f"{self.units} units"

    def output_shape(self, in_shape):
        return (self.units,)

    def param_count(self, in_shape):
        return fc_param_count(in_shape, self.units)


@dataclass(frozen=True)
class Network:
    """A network on paper: a name, an input shape (H, W, C) and a tuple of layer specs.

    Unnamed layers are numbered as AlexNet's are: CONV and FC layers share one count (the
    weight layers: CONV1..CONV5, FC6..FC8), POOL and NORM layers have a count each.
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
    """One line of a summary: a layer's output shape, activations and parameters."""

    name: str
    kind: str
    spec: str
    shape: tuple
    weights: int = 0
    biases: int = 0

    @property
    def activations(self):
        """Values in the layer's output, per image."""
        return math.prod(self.shape)

    @property
    def params(self):
        return self.weights + self.biases


@dataclass(frozen=True)
class Summary:
    """The rows of a network (the input first) and their totals; bytes at bytes_per_value."""

    name: str
    rows: tuple
    bytes_per_value: int = FLOAT32_BYTES

    @property
    def activations(self):
        """Total values kept for one image on the forward pass, input included."""
        return sum(r.activations for r in self.rows)

    @property
    def weights(self):
        return sum(r.weights for r in self.rows)

    @property
    def biases(self):
        return sum(r.biases for r in self.rows)

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
            out = tuple(layer.output_shape(shape))
            weights, biases = layer.param_count(shape)
        except ValueError as err:
            raise ValueError(f"{net.name} {name} ({layer.describe()}), input "
                             f"{format_shape(shape)}: {err}") from err
        rows.append(Row(name, layer.kind, layer.describe(), out, weights, biases))
        shape = out
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


def format_table(summary):
    """The rows as an aligned text table with thousands separators, then the totals."""
    header = ("layer", "spec", "output", "activations", "memory", "weights", "biases", "params")
    lines = [(r.name, r.spec, format_shape(r.shape), f"{r.activations:,}",
              format_bytes(r.activations * summary.bytes_per_value),
              f"{r.weights:,}", f"{r.biases:,}", f"{r.params:,}") for r in summary.rows]
    total = ("TOTAL", "", "", f"{summary.activations:,}", format_bytes(summary.activation_bytes),
             f"{summary.weights:,}", f"{summary.biases:,}", f"{summary.params:,}")
    widths = [max(len(line[i]) for line in [header, total, *lines]) for i in range(len(header))]

    def fmt(cells):  # text columns to the left, numbers to the right
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(fmt(header))
    return "\n".join([f"{summary.name} ({summary.bytes_per_value} bytes per value)", fmt(header), rule,
                      *map(fmt, lines), rule, fmt(total),
                      f"memory: {summary.activations:,} values = {summary.activation_bytes:,} bytes "
                      f"({format_bytes(summary.activation_bytes)}) per image, forward pass only; "
                      f"parameters: {summary.params:,} = {format_bytes(summary.param_bytes)}"])


def print_table(net, bytes_per_value=FLOAT32_BYTES):
    """Print the table of a Network (or of a Summary) and return its Summary."""
    summary = net if isinstance(net, Summary) else summarize(net, bytes_per_value)
    print(format_table(summary))
    return summary


def plot_summary(summary, axes=None, log_memory=False, log_params=True):
    """Two bar charts, one bar per row: activations (memory per image) and parameters.

    Inputs: summary, a Summary; axes, two matplotlib axes or None for a new figure; log_memory,
    log_params: bool, a log scale for that chart (parameters span 1e3 to 1e8 in VGG-16).
    Returns: the two axes.
    """
    import matplotlib.pyplot as plt

    rows = summary.rows
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    x = range(len(rows))
    for ax, values, label, color, log in (
            (axes[0], [r.activations for r in rows], "activations per image", "tab:blue", log_memory),
            (axes[1], [r.params for r in rows], "parameters", "tab:orange", log_params)):
        ax.bar(x, values, color=color)
        ax.set_ylabel(label + (" (log scale)" if log else ""))
        if log:
            ax.set_yscale("log")
    axes[1].set_xticks(list(x))
    axes[1].set_xticklabels([r.name for r in rows], rotation=90)
    axes[0].set_title(f"{summary.name}: memory and parameters per layer")
    return axes


# --------------------------------------------------------------------------------------------
# The lecture's case studies
# --------------------------------------------------------------------------------------------
LENET5 = Network(
    "LeNet-5", (32, 32, 1),
    (Conv(6, 5), Pool(2, 2), Conv(16, 5), Pool(2, 2), Conv(120, 5), FC(84), FC(10)),
    note="LeCun et al. 1998: 5x5 convs at stride 1, 2x2 subsampling at stride 2. Here the "
         "subsampling is a parameter-free pool (the original's had a trainable scale and bias "
         "per map) and the output layer an FC layer of 10 (the original's were RBF units).")

def _alexnet_layers(conv1, conv2, widths):
    """AlexNet's pattern with the given CONV1 and CONV2 specs and CONV3, CONV4, CONV5 widths."""
    return (conv1, Pool(3, 2), Norm(), conv2, Pool(3, 2), Norm(),
            *(Conv(k, 3, stride=1, pad=1) for k in widths), Pool(3, 2), FC(4096), FC(4096), FC(1000))


ALEXNET = Network(
    "AlexNet", (227, 227, 3),
    _alexnet_layers(Conv(96, 11, stride=4, pad=0), Conv(256, 5, stride=1, pad=2), (384, 384, 256)),
    note="Krizhevsky et al. 2012, the lecture's simplified one-tower version on 227x227x3.")

ZFNET = Network(
    "ZFNet", (227, 227, 3),
    _alexnet_layers(Conv(96, 7, stride=2, pad=0), Conv(256, 5, stride=2, pad=1), (512, 1024, 512)),
    note="Zeiler & Fergus 2013: AlexNet with CONV1 7x7 stride 2 and CONV3,4,5 of 512, 1024, 512 "
         "filters. The smaller stride doubles CONV1's output (111x111); so that POOL2 sees "
         "AlexNet's 27x27 again, CONV2 runs at stride 2 with pad 1 here (our choice, on the "
         "lecture's 227 input).")


def _vgg_block(filters, convs):
    return tuple(Conv(filters, 3, stride=1, pad=1) for _ in range(convs)) + (Pool(2, 2),)


VGG16 = Network(
    "VGG-16", (224, 224, 3),
    _vgg_block(64, 2) + _vgg_block(128, 2) + _vgg_block(256, 3) + _vgg_block(512, 3)
    + _vgg_block(512, 3) + (FC(4096), FC(4096), FC(1000)),
    note="Simonyan & Zisserman 2014: only 3x3 convs at stride 1 pad 1 and 2x2 max pools at stride "
         "2. Numbered by weight layer, the FC layers are FC14..FC16 (the slide says FC6 for the "
         "first, after AlexNet).")

ALPHAGO_POLICY = Network(
    "AlphaGo policy network", (19, 19, 48),
    (Conv(192, 5, stride=1, pad=2),) + tuple(Conv(192, 3, stride=1, pad=1) for _ in range(11))
    + (Conv(1, 1, stride=1, pad=0),),
    note="Silver et al. 2016: 48 feature planes of the 19x19 board in, one 19x19 map of move "
         "probabilities out (a softmax over the map's 361 values).")

CASE_STUDIES = (LENET5, ALEXNET, ZFNET, VGG16, ALPHAGO_POLICY)
