# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Fast convolution and max pooling: Cython im2col/col2im kernels and the layers built on them.

Same signatures, outputs and errors as the naive layers in cs231n/layers.py, for float32 and
float64 inputs; the output dtype is the input dtype.

Convolution, one image at a time: `im2col` copies every receptive field of the image into the
columns of a matrix `cols` (C*HH*WW, H_out*W_out); one matrix multiply with the filters
(F, C*HH*WW) then gives the image's output (F, H_out*W_out) in place, with no transpose.
Backward reuses the same buffer: dw += dout_n cols^T, d(cols) = w^T dout_n, and `col2im`
adds d(cols) back onto the image. Each core works on its own images with its own cols buffer
(a few MB, warm in its cache) and a one-thread BLAS call; the whole batch's im2col matrix
(hundreds of MB of fresh memory for a 64-image layer) never exists.

Max pooling: when the windows tile the input (pool_height == pool_width == stride) x is read
as if reshaped to (N, C, H_out, ph, W_out, pw), each window in place; otherwise each channel
goes through im2col and the maximum is taken down its columns. The forward pass records where
each maximum was (the first one in row-major order, as np.argmax) and backward sends the
gradient there.

Threads: OpenMP (`prange`) when the compiler has it (see setup.py), one core otherwise.
Built without OpenMP, or for a single image, the loop runs on one thread and the BLAS inside
uses every core instead.

This file is the compiled extension. Its twin fast_layers.py only raises an ImportError that
says how to build it: in one folder CPython's import system prefers an extension module to a
.py file of the same name, so the .py is found only when the build is missing.
"""
import numpy as np

from cs231n.shapes import conv_output_size, conv_shapes, pool_shapes

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset

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

__all__ = ["conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
           "max_pool_backward_fast", "im2col", "col2im", "openmp_threads"]

_FLOATS = (np.float32, np.float64)


# ----------------------------------------------------------------------------------------------
# BLAS: scipy's (Fortran calling convention), fetched at import so that no BLAS headers or
# scipy are needed to build. C = op(A) op(B), column-major; a row-major (r, c) matrix is the
# column-major (c, r) matrix with leading dimension c.
# ----------------------------------------------------------------------------------------------
ctypedef void (*sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*,
                         float*, float*, int*) noexcept nogil
ctypedef void (*dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*,
                         double*, double*, int*) noexcept nogil

cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def _load_blas():
    """Fetch sgemm/dgemm from scipy.linalg.cython_blas; return a controller that sets BLAS threads."""
    global _sgemm, _dgemm
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    _sgemm = <sgemm_t>PyCapsule_GetPointer(capi["sgemm"], PyCapsule_GetName(capi["sgemm"]))
    _dgemm = <dgemm_t>PyCapsule_GetPointer(capi["dgemm"], PyCapsule_GetName(capi["dgemm"]))
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # then the image loops stay on one thread and BLAS uses the cores
        return None
    return ThreadpoolController()


_BLAS_THREADS = _load_blas()


cdef inline void _gemm(bint trans_a, bint trans_b, int m, int n, int k, const real* a, int lda,
                       const real* b, int ldb, real beta, real* c, int ldc) noexcept nogil:
    """c = op(a) op(b) + beta c in column-major terms; op transposes where trans_* is true."""
    cdef real one = 1
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if real is float:
        _sgemm(&ta, &tb, &m, &n, &k, &one, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
    else:
        _dgemm(&ta, &tb, &m, &n, &k, &one, <double*>a, &lda, <double*>b, &ldb, &beta, c, &ldc)


def openmp_threads():
    """Threads the OpenMP loops use: an int, 0 when the extension was built without OpenMP."""
    return cs231n_omp_threads()


def _threads_for(n_items):
    """How many threads a loop over n_items images runs on (1: serial, BLAS keeps its threads)."""
    if _BLAS_THREADS is None:
        return 1
    return max(1, min(cs231n_omp_threads(), n_items))


class _SerialBlas:
    """Context manager: BLAS on one thread while our own threads each call it."""

    def __init__(self, threads):
        self.limiter = _BLAS_THREADS.limit(limits=1, user_api="blas") if threads > 1 else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.limiter is not None:
            self.limiter.restore_original_limits()


# ----------------------------------------------------------------------------------------------
# im2col / col2im for one image. cols rows are ordered (c, i, j), columns (h_out, w_out); `ld`
# is the distance between rows, so an image can be one block of a wider matrix.
# ----------------------------------------------------------------------------------------------

cdef inline Py_ssize_t _first_inside(Py_ssize_t offset, Py_ssize_t stride) noexcept nogil:
    """Smallest k >= 0 with k*stride + offset >= 0."""
    return 0 if offset >= 0 else (-offset + stride - 1) // stride


cdef inline Py_ssize_t _end_inside(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size,
                                   Py_ssize_t count) noexcept nogil:
    """One past the largest k < count with k*stride + offset < size (0 if there is none)."""
    cdef Py_ssize_t k
    if size - 1 - offset < 0:
        return 0
    k = (size - 1 - offset) // stride + 1
    return k if k < count else count


cdef void _im2col_image(const real* x, real* cols, Py_ssize_t ld, Py_ssize_t C, Py_ssize_t H,
                        Py_ssize_t W, Py_ssize_t HH, Py_ssize_t WW, Py_ssize_t stride,
                        Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """cols[(c, i, j), (ho, wo)] = x[c, ho*s + i - pad, wo*s + j - pad], 0 in the padding."""
    cdef Py_ssize_t c, i, j, ho, wo, h, lo, hi
    cdef const real* src
    cdef real* dst
    for c in range(C):
        for i in range(HH):
            for j in range(WW):
                dst = cols + ((c * HH + i) * WW + j) * ld
                lo = _first_inside(j - pad, stride)
                hi = _end_inside(j - pad, stride, W, Wo)
                if hi < lo:
                    hi = lo
                for ho in range(Ho):
                    h = ho * stride + i - pad
                    if h < 0 or h >= H:
                        memset(dst, 0, Wo * sizeof(real))
                    else:
                        memset(dst, 0, lo * sizeof(real))
                        src = x + (c * H + h) * W + lo * stride + j - pad
                        if stride == 1:
                            memcpy(dst + lo, src, (hi - lo) * sizeof(real))
                        else:
                            for wo in range(hi - lo):
                                dst[lo + wo] = src[wo * stride]
                        memset(dst + hi, 0, (Wo - hi) * sizeof(real))
                    dst += Wo


cdef void _col2im_image(const real* cols, Py_ssize_t ld, real* dx, Py_ssize_t C, Py_ssize_t H,
                        Py_ssize_t W, Py_ssize_t HH, Py_ssize_t WW, Py_ssize_t stride,
                        Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """dx[c] = sum over (i, j) of the rows (c, i, j) of cols put back where im2col took them."""
    cdef Py_ssize_t c, i, j, ho, wo, h, lo, hi
    cdef const real* src
    cdef real* dst
    memset(dx, 0, C * H * W * sizeof(real))
    for c in range(C):
        for i in range(HH):
            for j in range(WW):
                src = cols + ((c * HH + i) * WW + j) * ld
                lo = _first_inside(j - pad, stride)
                hi = _end_inside(j - pad, stride, W, Wo)
                for ho in range(Ho):
                    h = ho * stride + i - pad
                    if 0 <= h < H and lo < hi:
                        dst = dx + (c * H + h) * W + lo * stride + j - pad
                        if stride == 1:
                            for wo in range(hi - lo):
                                dst[wo] += src[lo + wo]
                        else:
                            for wo in range(hi - lo):
                                dst[wo * stride] += src[lo + wo]
                    src += Wo


def _im2col_all(const real[:, :, :, ::1] x, real[:, ::1] cols, Py_ssize_t HH, Py_ssize_t WW,
                Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo):
    cdef Py_ssize_t n, N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t P = Ho * Wo, ld = cols.shape[1]
    for n in prange(N, nogil=True, schedule="static"):
        _im2col_image(&x[n, 0, 0, 0], &cols[0, 0] + n * P, ld, C, H, W, HH, WW, stride, pad,
                      Ho, Wo)


def _col2im_all(const real[:, ::1] cols, real[:, :, :, ::1] dx, Py_ssize_t HH, Py_ssize_t WW,
                Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo):
    cdef Py_ssize_t n, N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t P = Ho * Wo, ld = cols.shape[1]
    for n in prange(N, nogil=True, schedule="static"):
        _col2im_image(&cols[0, 0] + n * P, ld, &dx[n, 0, 0, 0], C, H, W, HH, WW, stride, pad,
                      Ho, Wo)


def _float_dtype(x, who):
    """x's dtype if it is float32 or float64, else a TypeError that says how to convert."""
    dtype = getattr(x, "dtype", None)
    if dtype not in _FLOATS:
        raise TypeError(f"{who}: x must be a float32 or float64 array, got "
                        f"{dtype if dtype is not None else type(x).__name__}; "
                        "convert it with x.astype(np.float32) (or np.float64)")
    return dtype


def im2col(x, HH, WW, stride, pad):
    """Copy every HH x WW window of the zero-padded x into a column of one matrix.

    Inputs: x: (N, C, H, W) float32 or float64; HH, WW: window height and width;
    stride, pad: ints, as in conv_param.
    Returns: cols: (C*HH*WW, N*H_out*W_out), x's dtype; rows ordered (c, i, j), columns
    ordered (n, h_out, w_out).
    """
    dtype = _float_dtype(x, "im2col")
    N, C, H, W = x.shape
    Ho = conv_output_size(H, HH, stride, pad, "im2col", "height")
    Wo = conv_output_size(W, WW, stride, pad, "im2col", "width")
    cols = np.empty((C * HH * WW, N * Ho * Wo), dtype=dtype)
    if cols.size:
        _im2col_all(np.ascontiguousarray(x), cols, HH, WW, stride, pad, Ho, Wo)
    return cols


def col2im(cols, x_shape, HH, WW, stride, pad):
    """Add the columns back onto the image they came from: the adjoint (transpose) of im2col.

    Inputs: cols: (C*HH*WW, N*H_out*W_out) float32 or float64; x_shape: (N, C, H, W);
    HH, WW, stride, pad as given to im2col.
    Returns: dx: x_shape, cols' dtype; where windows overlap, their values add up.
    """
    dtype = _float_dtype(cols, "col2im")
    N, C, H, W = x_shape
    Ho = conv_output_size(H, HH, stride, pad, "col2im", "height")
    Wo = conv_output_size(W, WW, stride, pad, "col2im", "width")
    if cols.shape != (C * HH * WW, N * Ho * Wo):
        raise ValueError(f"col2im: cols must have shape {(C * HH * WW, N * Ho * Wo)} for "
                         f"x_shape {tuple(x_shape)} and a {HH}x{WW} window, got {cols.shape}")
    dx = np.zeros((N, C, H, W), dtype=dtype)
    if dx.size and cols.size:
        _col2im_all(np.ascontiguousarray(cols), dx, HH, WW, stride, pad, Ho, Wo)
    return dx


# ----------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------

def _conv_forward(const real[:, :, :, ::1] x, const real[:, ::1] wm, const real[::1] b,
                  real[:, :, ::1] out, real[:, ::1] cols, Py_ssize_t HH, Py_ssize_t WW,
                  Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo, int threads):
    """out[n] = wm @ im2col(x[n]) + b for every image; cols: one (K*P) buffer per thread."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], P = Ho * Wo, n, f, p
    cdef real* col
    cdef real* o
    for n in prange(N, nogil=True, schedule="dynamic", num_threads=threads):
        col = &cols[threadid(), 0]
        o = &out[n, 0, 0]
        _im2col_image(&x[n, 0, 0, 0], col, P, C, H, W, HH, WW, stride, pad, Ho, Wo)
        for f in range(F):
            for p in range(P):
                o[f * P + p] = b[f]
        # out[n] (F, P) += wm (F, K) @ col (K, P), i.e. column-major o^T = col^T wm^T
        _gemm(False, False, <int>P, <int>F, <int>K, col, <int>P, &wm[0, 0], <int>K, 1, o, <int>P)


def _conv_backward(const real[:, :, :, ::1] x, const real[:, ::1] wm,
                   const real[:, :, ::1] dout, real[:, :, :, ::1] dx, real[:, :, ::1] dw_part,
                   double[:, ::1] db_part, real[:, ::1] cols, Py_ssize_t HH, Py_ssize_t WW,
                   Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo, int threads):
    """Per image: dw_part[t] += dout[n] cols^T, cols <- wm^T dout[n], dx[n] = col2im(cols)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = wm.shape[0], K = wm.shape[1], P = Ho * Wo, n, f, p, t
    cdef real* col
    cdef const real* d
    cdef double acc
    for n in prange(N, nogil=True, schedule="dynamic", num_threads=threads):
        t = threadid()
        col = &cols[t, 0]
        d = &dout[n, 0, 0]
        _im2col_image(&x[n, 0, 0, 0], col, P, C, H, W, HH, WW, stride, pad, Ho, Wo)
        # dw (F, K) += d (F, P) @ col^T (P, K): column-major dw^T += col d^T
        _gemm(True, False, <int>K, <int>F, <int>P, col, <int>P, d, <int>P, 1,
              &dw_part[t, 0, 0], <int>K)
        # col (K, P) = wm^T (K, F) @ d (F, P): column-major col^T = d^T wm
        _gemm(False, True, <int>P, <int>K, <int>F, d, <int>P, &wm[0, 0], <int>K, 0, col, <int>P)
        _col2im_image(col, P, &dx[n, 0, 0, 0], C, H, W, HH, WW, stride, pad, Ho, Wo)
        for f in range(F):
            acc = 0
            for p in range(P):
                acc = acc + d[f * P + p]
            db_part[t, f] += acc


def conv_forward_fast(x, w, b, conv_param):
    """Fast convolution forward pass: the same result as conv_forward_naive.

    Inputs: x: (N, C, H, W) float32 or float64; w: (F, C, HH, WW); b: (F,);
    conv_param: {'stride': int, 'pad': int}. w and b are used in x's dtype.
    Returns: out: (N, F, H_out, W_out) in x's dtype; cache: (x, w, b, conv_param).
    """
    N, C, H, W, F, HH, WW, stride, pad, Ho, Wo = conv_shapes(x, w, b, conv_param,
                                                             "conv_forward_fast")
    dtype = _float_dtype(x, "conv_forward_fast")
    K, P = C * HH * WW, Ho * Wo
    out = np.empty((N, F, Ho, Wo), dtype=dtype)
    if out.size:
        threads = _threads_for(N)
        cols = np.empty((threads, K * P), dtype=dtype)
        with _SerialBlas(threads):
            _conv_forward(np.ascontiguousarray(x), np.ascontiguousarray(w.reshape(F, K), dtype),
                          np.ascontiguousarray(b, dtype), out.reshape(N, F, P), cols,
                          HH, WW, stride, pad, Ho, Wo, threads)
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Fast convolution backward pass: the same result as conv_backward_naive.

    Inputs: dout: (N, F, H_out, W_out) upstream gradient; cache: (x, w, b, conv_param) from
    conv_forward_fast.
    Returns: dx: (N, C, H, W) in x's dtype; dw: (F, C, HH, WW) in w's dtype; db: (F,) in b's.
    """
    x, w, b, conv_param = cache
    N, C, H, W, F, HH, WW, stride, pad, Ho, Wo = conv_shapes(x, w, b, conv_param,
                                                             "conv_backward_fast")
    dtype = _float_dtype(x, "conv_backward_fast")
    if getattr(dout, "shape", None) != (N, F, Ho, Wo):
        raise ValueError(f"conv_backward_fast: dout must be shaped like the forward output "
                         f"{(N, F, Ho, Wo)}, got {getattr(dout, 'shape', type(dout).__name__)}")
    K, P = C * HH * WW, Ho * Wo
    threads = _threads_for(N)
    dx = np.zeros((N, C, H, W), dtype=dtype)
    dw_part = np.zeros((threads, F, K), dtype=dtype)
    db_part = np.zeros((threads, F), dtype=np.float64)
    if dx.size and dout.size:
        cols = np.empty((threads, K * P), dtype=dtype)
        with _SerialBlas(threads):
            _conv_backward(np.ascontiguousarray(x), np.ascontiguousarray(w.reshape(F, K), dtype),
                           np.ascontiguousarray(dout, dtype).reshape(N, F, P), dx, dw_part,
                           db_part, cols, HH, WW, stride, pad, Ho, Wo, threads)
    dw = dw_part.sum(axis=0) if threads > 1 else dw_part[0]
    return (dx, dw.reshape(w.shape).astype(w.dtype, copy=False),
            db_part.sum(axis=0).astype(b.dtype, copy=False))
