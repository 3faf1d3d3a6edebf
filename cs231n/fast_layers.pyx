# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Fast convolution and max pooling: Cython im2col/col2im kernels and the layers built on them.

Same signatures, outputs and errors as the naive layers in cs231n/layers.py, for float32 and
float64 inputs (the output dtype is the input dtype). A convolution becomes one matrix multiply
per chunk of images: `im2col` copies every receptive field of the chunk into a column matrix
`cols` (C*HH*WW, B*H_out*W_out), the BLAS behind numpy multiplies it by the filters, and
`col2im` adds the columns' gradients back onto the image. The chunk is sized so that `cols`
stays small and warm in the cache, and the same buffer is reused for every chunk: a single
im2col matrix of the whole batch would be hundreds of MB of fresh memory for a 64-image layer.

The kernels use both cores with OpenMP where the compiler supports it (see setup.py) and run
on one core otherwise; the matrix multiplies always use all cores through BLAS.

This module is the compiled extension. Its twin `fast_layers.py` only raises an ImportError
that says how to build it: CPython's import system prefers an extension module to a .py file
of the same name in the same folder, so the .py is found only when the build is missing.
"""
import numpy as np

from cs231n.shapes import conv_shapes, pool_shapes

from libc.string cimport memcpy, memset
from cython.parallel cimport prange

ctypedef fused real:
    float
    double

ctypedef fused index_t:
    unsigned char
    int

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int cs231n_omp_threads(void) { return omp_get_max_threads(); }
    #else
    static int cs231n_omp_threads(void) { return 0; }
    #endif
    """
    int cs231n_omp_threads() nogil

# Bytes of the column buffer for one chunk of images: big enough that the GEMM is efficient,
# small enough to stay in the L2/L3 cache and to be reused (never fresh pages) from call to call.
CHUNK_BYTES = 6 << 20
_FLOATS = (np.float32, np.float64)

__all__ = ["conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
           "max_pool_backward_fast", "im2col", "col2im", "openmp_threads"]


def openmp_threads():
    """Threads the OpenMP kernels use: an int, 0 when the extension was built without OpenMP."""
    return cs231n_omp_threads()


# ----------------------------------------------------------------------------------------------
# Kernels. All take C-contiguous arrays; `cols` is laid out (C*HH*WW, B*H_out*W_out) with rows
# ordered (c, i, j) and columns ordered (image, output row, output column).
# ----------------------------------------------------------------------------------------------

cdef inline Py_ssize_t _first_valid(Py_ssize_t offset, Py_ssize_t stride) noexcept nogil:
    """Smallest k >= 0 with k*stride + offset >= 0."""
    if offset >= 0:
        return 0
    return (-offset + stride - 1) // stride


cdef inline Py_ssize_t _end_valid(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size,
                                  Py_ssize_t count) noexcept nogil:
    """One past the largest k < count with k*stride + offset < size (may be <= first)."""
    cdef Py_ssize_t k
    if size - 1 - offset < 0:
        return 0
    k = (size - 1 - offset) // stride + 1
    return k if k < count else count


cdef void _im2col_row(const real* plane, real* dst, Py_ssize_t H, Py_ssize_t W,
                      Py_ssize_t i, Py_ssize_t j, Py_ssize_t stride, Py_ssize_t pad,
                      Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """Fill one row of cols for one image: dst[ho*Wo + wo] = plane[ho*s+i-pad, wo*s+j-pad] or 0."""
    cdef Py_ssize_t ho, wo, hi, lo, hi_end, w0
    cdef const real* src
    lo = _first_valid(j - pad, stride)
    hi_end = _end_valid(j - pad, stride, W, Wo)
    if hi_end < lo:
        hi_end = lo
    for ho in range(Ho):
        hi = ho * stride + i - pad
        if hi < 0 or hi >= H:
            memset(dst, 0, Wo * sizeof(real))
        else:
            if lo > 0:
                memset(dst, 0, lo * sizeof(real))
            w0 = lo * stride + j - pad
            src = plane + hi * W + w0
            if stride == 1:
                memcpy(dst + lo, src, (hi_end - lo) * sizeof(real))
            else:
                for wo in range(hi_end - lo):
                    dst[lo + wo] = src[wo * stride]
            if hi_end < Wo:
                memset(dst + hi_end, 0, (Wo - hi_end) * sizeof(real))
        dst += Wo


cdef void _col2im_plane(const real* cols, real* plane, Py_ssize_t row0, Py_ssize_t ncols,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t HH, Py_ssize_t WW,
                        Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho,
                        Py_ssize_t Wo) noexcept nogil:
    """Add the HH*WW rows of cols starting at row0 (one image's slice) onto one channel plane."""
    cdef Py_ssize_t i, j, ho, wo, hi, lo, hi_end, w0
    cdef const real* src
    cdef real* dst
    for i in range(HH):
        for j in range(WW):
            lo = _first_valid(j - pad, stride)
            hi_end = _end_valid(j - pad, stride, W, Wo)
            if hi_end <= lo:
                continue
            src = cols + (row0 + i * WW + j) * ncols
            for ho in range(Ho):
                hi = ho * stride + i - pad
                if 0 <= hi < H:
                    w0 = lo * stride + j - pad
                    dst = plane + hi * W + w0
                    if stride == 1:
                        for wo in range(hi_end - lo):
                            dst[wo] = dst[wo] + src[lo + wo]
                    else:
                        for wo in range(hi_end - lo):
                            dst[wo * stride] = dst[wo * stride] + src[lo + wo]
                src += Wo


cdef void _im2col(const real[:, :, :, ::1] x, real[:, ::1] cols, Py_ssize_t HH, Py_ssize_t WW,
                  Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """cols[(c, i, j), (b, ho, wo)] = x[b, c, ho*s+i-pad, wo*s+j-pad] (0 in the padding)."""
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t P = Ho * Wo, ncols = cols.shape[1], task, b, r, c, i, j
    cdef const real* xp = &x[0, 0, 0, 0]
    cdef real* cp = &cols[0, 0]
    for task in prange(C * HH * WW * B, schedule="static"):
        r = task // B
        b = task - r * B
        c = r // (HH * WW)
        i = (r // WW) % HH
        j = r % WW
        _im2col_row(xp + (b * C + c) * H * W, cp + r * ncols + b * P, H, W, i, j, stride, pad,
                    Ho, Wo)


cdef void _col2im(const real[:, ::1] cols, real[:, :, :, ::1] dx, Py_ssize_t HH, Py_ssize_t WW,
                  Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """dx[b, c] = sum of cols rows (c, i, j) of image b put back where im2col took them."""
    cdef Py_ssize_t B = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t ncols = cols.shape[1], task, b, c
    cdef const real* cp = &cols[0, 0]
    cdef real* dp = &dx[0, 0, 0, 0]
    for task in prange(B * C, schedule="static"):
        b = task // C
        c = task - b * C
        memset(dp + task * H * W, 0, H * W * sizeof(real))
        _col2im_plane(cp + b * Ho * Wo, dp + task * H * W, c * HH * WW, ncols, H, W, HH, WW,
                      stride, pad, Ho, Wo)


cdef void _scatter_bias(const real[:, ::1] y, const real[::1] bias, real[:, :, ::1] out) noexcept nogil:
    """out[b, f, p] = y[f, b*P + p] + bias[f]: the GEMM result back to (N, F, H_out*W_out)."""
    cdef Py_ssize_t B = out.shape[0], F = out.shape[1], P = out.shape[2], task, b, f, p
    cdef const real* src
    cdef real* dst
    cdef real bf
    for task in prange(B * F, schedule="static"):
        b = task // F
        f = task - b * F
        src = &y[f, b * P]
        dst = &out[b, f, 0]
        bf = bias[f]
        for p in range(P):
            dst[p] = src[p] + bf


cdef void _gather_sum(const real[:, :, ::1] dout, real[:, ::1] y, double[::1] db) noexcept nogil:
    """y[f, b*P + p] = dout[b, f, p] and db[f] += sum over b, p of dout[b, f, p]."""
    cdef Py_ssize_t B = dout.shape[0], F = dout.shape[1], P = dout.shape[2], b, f, p
    cdef const real* src
    cdef real* dst
    cdef double acc
    for f in prange(F, schedule="static"):
        acc = 0
        for b in range(B):
            src = &dout[b, f, 0]
            dst = &y[f, b * P]
            for p in range(P):
                dst[p] = src[p]
                acc = acc + src[p]
        db[f] += acc


def _im2col_into(const real[:, :, :, ::1] x, real[:, ::1] cols, Py_ssize_t HH, Py_ssize_t WW,
                 Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo):
    with nogil:
        _im2col(x, cols, HH, WW, stride, pad, Ho, Wo)


def _col2im_into(const real[:, ::1] cols, real[:, :, :, ::1] dx, Py_ssize_t HH, Py_ssize_t WW,
                 Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo):
    with nogil:
        _col2im(cols, dx, HH, WW, stride, pad, Ho, Wo)


def _scatter_bias_into(const real[:, ::1] y, const real[::1] bias, real[:, :, ::1] out):
    with nogil:
        _scatter_bias(y, bias, out)


def _gather_sum_into(const real[:, :, ::1] dout, real[:, ::1] y, double[::1] db):
    with nogil:
        _gather_sum(dout, y, db)


# ----------------------------------------------------------------------------------------------
# Python-facing helpers
# ----------------------------------------------------------------------------------------------

def _float_dtype(x, who):
    """The dtype of x if it is float32 or float64, else a TypeError saying how to convert."""
    dtype = getattr(x, "dtype", None)
    if dtype not in _FLOATS:
        raise TypeError(f"{who}: x must be a float32 or float64 array, got "
                        f"{dtype if dtype is not None else type(x).__name__}; "
                        "convert it with x.astype(np.float32) (or np.float64)")
    return dtype


def _chunk(per_image_elems, itemsize, n):
    """Images per chunk so that one chunk's column buffer takes about CHUNK_BYTES."""
    return int(max(1, min(n, CHUNK_BYTES // max(1, per_image_elems * itemsize))))


def im2col(x, HH, WW, stride, pad):
    """Copy every HH x WW receptive field of x into the columns of a matrix.

    Inputs: x: (N, C, H, W) float32 or float64; HH, WW: window size; stride, pad: ints.
    Returns: cols: (C*HH*WW, N*H_out*W_out), x's dtype; rows ordered (c, i, j), columns
    ordered (n, h_out, w_out); zeros where a window reaches into the padding.
    """
    dtype = _float_dtype(x, "im2col")
    N, C, H, W = x.shape
    Ho = conv_output_size_checked(H, HH, stride, pad, "height")
    Wo = conv_output_size_checked(W, WW, stride, pad, "width")
    x = np.ascontiguousarray(x)
    cols = np.empty((C * HH * WW, N * Ho * Wo), dtype=dtype)
    if cols.size:
        _im2col_into(x, cols, HH, WW, stride, pad, Ho, Wo)
    return cols


def col2im(cols, x_shape, HH, WW, stride, pad):
    """Sum columns back onto the image: the adjoint of im2col (overlapping windows add up).

    Inputs: cols: (C*HH*WW, N*H_out*W_out) float32 or float64; x_shape: (N, C, H, W);
    HH, WW, stride, pad as given to im2col.
    Returns: dx: x_shape, cols' dtype.
    """
    dtype = _float_dtype(cols, "col2im")
    N, C, H, W = x_shape
    Ho = conv_output_size_checked(H, HH, stride, pad, "height")
    Wo = conv_output_size_checked(W, WW, stride, pad, "width")
    if cols.shape != (C * HH * WW, N * Ho * Wo):
        raise ValueError(f"col2im: cols must have shape {(C * HH * WW, N * Ho * Wo)} for "
                         f"x_shape {tuple(x_shape)}, got {cols.shape}")
    cols = np.ascontiguousarray(cols)
    dx = np.empty((N, C, H, W), dtype=dtype)
    if dx.size:
        _col2im_into(cols, dx, HH, WW, stride, pad, Ho, Wo)
    return dx


def conv_output_size_checked(size, field, stride, pad, axis):
    """conv_output_size from cs231n.shapes, for the bare im2col/col2im helpers."""
    from cs231n.shapes import conv_output_size
    return conv_output_size(size, field, stride, pad, "im2col", axis)


# ----------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------

def conv_forward_fast(x, w, b, conv_param):
    """Fast convolution forward pass, same result as conv_forward_naive.

    Inputs: x: (N, C, H, W) float32 or float64; w: (F, C, HH, WW); b: (F,);
    conv_param: {'stride': int, 'pad': int}.
    Returns: out: (N, F, H_out, W_out), x's dtype; cache: (x, w, b, conv_param).
    """
    N, C, H, W, F, HH, WW, stride, pad, Ho, Wo = conv_shapes(x, w, b, conv_param)
    dtype = _float_dtype(x, "conv_forward_fast")
    xc = np.ascontiguousarray(x)
    wm = np.ascontiguousarray(w.reshape(F, C * HH * WW), dtype=dtype)
    bias = np.ascontiguousarray(b, dtype=dtype)
    K, P = C * HH * WW, Ho * Wo
    out = np.empty((N, F, Ho, Wo), dtype=dtype)
    if out.size == 0:
        return out, (x, w, b, conv_param)
    B = _chunk(K * P, dtype.itemsize, N)
    cols_buf = np.empty(K * B * P, dtype=dtype)
    y_buf = np.empty(F * B * P, dtype=dtype)
    out3 = out.reshape(N, F, P)
    for n0 in range(0, N, B):
        nb = min(B, N - n0)
        cols = cols_buf[:K * nb * P].reshape(K, nb * P)
        y = y_buf[:F * nb * P].reshape(F, nb * P)
        _im2col_into(xc[n0:n0 + nb], cols, HH, WW, stride, pad, Ho, Wo)
        np.matmul(wm, cols, out=y)
        _scatter_bias_into(y, bias, out3[n0:n0 + nb])
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Fast convolution backward pass, same result as conv_backward_naive.

    Inputs: dout: (N, F, H_out, W_out) upstream gradient; cache: (x, w, b, conv_param) from
    conv_forward_fast.
    Returns: dx: (N, C, H, W) in x's dtype, dw: (F, C, HH, WW) in w's dtype, db: (F,) in b's.
    """
    x, w, b, conv_param = cache
    N, C, H, W, F, HH, WW, stride, pad, Ho, Wo = conv_shapes(x, w, b, conv_param)
    dtype = _float_dtype(x, "conv_backward_fast")
    if getattr(dout, "shape", None) != (N, F, Ho, Wo):
        raise ValueError(f"conv_backward_fast: dout must have the forward output's shape "
                         f"{(N, F, Ho, Wo)}, got {getattr(dout, 'shape', type(dout).__name__)}")
    K, P = C * HH * WW, Ho * Wo
    xc = np.ascontiguousarray(x)
    d3 = np.ascontiguousarray(dout, dtype=dtype).reshape(N, F, P)
    wm = np.ascontiguousarray(w.reshape(F, K), dtype=dtype)
    dx = np.empty((N, C, H, W), dtype=dtype)
    dw = np.zeros((F, K), dtype=dtype)
    db = np.zeros(F, dtype=np.float64)
    if dx.size == 0 or dout.size == 0:
        return np.zeros_like(dx), dw.reshape(w.shape).astype(w.dtype), db.astype(b.dtype)
    B = _chunk(K * P, dtype.itemsize, N)
    cols_buf = np.empty(K * B * P, dtype=dtype)
    y_buf = np.empty(F * B * P, dtype=dtype)
    dw_part = np.empty((F, K), dtype=dtype)
    for n0 in range(0, N, B):
        nb = min(B, N - n0)
        cols = cols_buf[:K * nb * P].reshape(K, nb * P)
        y = y_buf[:F * nb * P].reshape(F, nb * P)
        _gather_sum_into(d3[n0:n0 + nb], y, db)
        _im2col_into(xc[n0:n0 + nb], cols, HH, WW, stride, pad, Ho, Wo)
        np.matmul(y, cols.T, out=dw_part)
        dw += dw_part
        np.matmul(wm.T, y, out=cols)  # the column buffer now holds d(cols)
        _col2im_into(cols, dx[n0:n0 + nb], HH, WW, stride, pad, Ho, Wo)
    return dx, dw.reshape(w.shape).astype(w.dtype, copy=False), db.astype(b.dtype)
