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

Stride 1 (in the forward pass, with 8 channels or more) skips im2col altogether: in the
zero-padded image, flattened, the inputs that window offset (i, j) sees for all output pixels
are one contiguous run of columns, so the convolution is HH*WW matrix multiplies
(F, C) x (C, H_out*W_padded) straight from the image ("shifted windows"); the padding columns
computed on the way are dropped.

Max pooling: when the windows tile the input (pool_height == pool_width == stride) x is read
as if reshaped to (N, C, H_out, ph, W_out, pw), each window in place; otherwise each channel
goes through im2col and the maximum is taken down its columns. The forward pass records where
each maximum was (the first one in row-major order, as np.argmax) and backward sends the
gradient there.

Threads: OpenMP (`prange`) when the compiler has it (see setup.py), one core otherwise. While
the cores convolve their own images, threadpoolctl holds BLAS to one thread; built without
OpenMP, without threadpoolctl, or for a single image, the loop runs on one thread and the BLAS
inside uses every core instead.

This file is the compiled extension. Its twin fast_layers.py only raises an ImportError that
says how to build it: in one folder CPython's import system prefers an extension module to a
.py file of the same name, so the .py is found only when the build is missing.
"""
import numpy as np

from cs231n.shapes import check_fits, conv_out_hw, conv_shapes, pool_shapes

from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset

ctypedef fused real:
    float
    double

ctypedef unsigned char uint8

ctypedef fused index_t:
    uint8
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

# The 2x2 stride-2 pooling kernels, the common case, in C: written so that gcc and clang
# vectorise them (the same loops in Cython come out with branches and run 5-10x slower).
# Forward: the pairs of the top row and of the bottom row into small arrays, then top against
# bottom; ties keep the earlier element (row-major first maximum, as np.argmax). The pairs
# ignore NaN, so a plane holding one returns 1 and is redone by the general loop.
cdef extern from *:
    """
    #define CS231N_POOL2X2(SUFFIX, T)                                                        \
    static int cs231n_pool2x2_forward_##SUFFIX(const T* x, T* out, unsigned char* arg,       \
                                               Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo) { \
        T top[256], bottom[256];                                                             \
        unsigned char ktop[256], kbottom[256];                                               \
        int nan = 0;                                                                         \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) {                                             \
            for (Py_ssize_t w0 = 0; w0 < Wo; w0 += 256) {                                    \
                const T* r0 = x + 2 * ho * W + 2 * w0;                                       \
                const T* r1 = r0 + W;                                                        \
                T* o = out + ho * Wo + w0;                                                   \
                unsigned char* a = arg + ho * Wo + w0;                                       \
                Py_ssize_t n = Wo - w0 < 256 ? Wo - w0 : 256;                                \
                for (Py_ssize_t i = 0; i < n; i++) {                                         \
                    T l = r0[2 * i], r = r0[2 * i + 1];                                      \
                    int c = r > l;                                                           \
                    top[i] = c ? r : l; ktop[i] = (unsigned char)c;                          \
                    nan |= (l != l) | (r != r);                                              \
                }                                                                            \
                for (Py_ssize_t i = 0; i < n; i++) {                                         \
                    T l = r1[2 * i], r = r1[2 * i + 1];                                      \
                    int c = r > l;                                                           \
                    bottom[i] = c ? r : l; kbottom[i] = (unsigned char)c;                    \
                    nan |= (l != l) | (r != r);                                              \
                }                                                                            \
                for (Py_ssize_t i = 0; i < n; i++) {                                         \
                    T t = top[i], b = bottom[i];                                             \
                    int c = (b > t) | ((b != b) & (t == t));                                 \
                    o[i] = c ? b : t; a[i] = c ? kbottom[i] + 2 : ktop[i];                   \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        return nan;                                                                          \
    }                                                                                        \
    static void cs231n_pool2x2_backward_##SUFFIX(const T* dout, const unsigned char* arg,    \
                                                 T* dx, Py_ssize_t W, Py_ssize_t Ho,         \
                                                 Py_ssize_t Wo) {                            \
        for (Py_ssize_t ho = 0; ho < Ho; ho++) {                                             \
            T* r0 = dx + 2 * ho * W;                                                         \
            T* r1 = r0 + W;                                                                  \
            const T* g = dout + ho * Wo;                                                     \
            const unsigned char* a = arg + ho * Wo;                                          \
            for (Py_ssize_t i = 0; i < Wo; i++) {                                            \
                T v = g[i]; int k = a[i];                                                    \
                r0[2 * i] = k == 0 ? v : 0; r0[2 * i + 1] = k == 1 ? v : 0;                  \
            }                                                                                \
            for (Py_ssize_t i = 0; i < Wo; i++) {                                            \
                T v = g[i]; int k = a[i];                                                    \
                r1[2 * i] = k == 2 ? v : 0; r1[2 * i + 1] = k == 3 ? v : 0;                  \
            }                                                                                \
        }                                                                                    \
    }
    CS231N_POOL2X2(f, float)
    CS231N_POOL2X2(d, double)
    """
    int cs231n_pool2x2_forward_f(const float*, float*, unsigned char*, Py_ssize_t, Py_ssize_t,
                                 Py_ssize_t) noexcept nogil
    int cs231n_pool2x2_forward_d(const double*, double*, unsigned char*, Py_ssize_t,
                                 Py_ssize_t, Py_ssize_t) noexcept nogil
    void cs231n_pool2x2_backward_f(const float*, const unsigned char*, float*, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t) noexcept nogil
    void cs231n_pool2x2_backward_d(const double*, const unsigned char*, double*, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t) noexcept nogil

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
    """Fetch sgemm/dgemm from scipy.linalg.cython_blas; return a BLAS thread controller or None."""
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

cdef inline Py_ssize_t _first_inside(Py_ssize_t offset, Py_ssize_t stride,
                                     Py_ssize_t count) noexcept nogil:
    """Smallest k >= 0 with k*stride + offset >= 0, at most count."""
    cdef Py_ssize_t k = 0 if offset >= 0 else (-offset + stride - 1) // stride
    return k if k < count else count


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
                lo = _first_inside(j - pad, stride, Wo)
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
                lo = _first_inside(j - pad, stride, Wo)
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
    for n in prange(N, nogil=True, schedule="dynamic"):
        _im2col_image(&x[n, 0, 0, 0], &cols[0, 0] + n * P, ld, C, H, W, HH, WW, stride, pad,
                      Ho, Wo)


def _col2im_all(const real[:, ::1] cols, real[:, :, :, ::1] dx, Py_ssize_t HH, Py_ssize_t WW,
                Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo):
    cdef Py_ssize_t n, N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t P = Ho * Wo, ld = cols.shape[1]
    for n in prange(N, nogil=True, schedule="dynamic"):
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
    check_fits(H, HH, stride, pad, "im2col", "height")
    check_fits(W, WW, stride, pad, "im2col", "width")
    Ho, Wo = conv_out_hw(H, W, HH, WW, stride, pad)
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
    check_fits(H, HH, stride, pad, "col2im", "height")
    check_fits(W, WW, stride, pad, "col2im", "width")
    Ho, Wo = conv_out_hw(H, W, HH, WW, stride, pad)
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
                   Py_ssize_t stride, Py_ssize_t pad, Py_ssize_t Ho, Py_ssize_t Wo, int threads,
                   bint need_dx):
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
        if need_dx:  # col (K, P) = wm^T (K, F) @ d (F, P): column-major col^T = d^T wm
            _gemm(False, True, <int>P, <int>K, <int>F, d, <int>P, &wm[0, 0], <int>K, 0, col,
                  <int>P)
            _col2im_image(col, P, &dx[n, 0, 0, 0], C, H, W, HH, WW, stride, pad, Ho, Wo)
        for f in range(F):
            acc = 0
            for p in range(P):
                acc = acc + d[f * P + p]
            db_part[t, f] += acc


# Shifted windows, for stride 1 and many channels: no im2col at all. With the image padded to
# (C, Hp, Wp) and each channel flattened, the inputs that window offset (i, j) sees for every
# output pixel form one run of Ho*Wp columns starting at column i*Wp + j, so
# out = sum over (i, j) of w[:, :, i, j] (F, C) @ that run (C, Ho*Wp): HH*WW matrix multiplies
# straight from the padded image. The last Wp - Wo columns of each output row wrap around into
# the next row and are dropped (the gradient is zero there, so backward can keep them).

cdef void _pad_image(const real* x, real* xp, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t pad, Py_ssize_t Hp, Py_ssize_t Wp) noexcept nogil:
    """xp (C, Hp, Wp) plus a tail of Wp zeros = x zero-padded by pad on every side."""
    cdef Py_ssize_t c, h
    memset(xp, 0, (C * Hp + 1) * Wp * sizeof(real))
    for c in range(C):
        for h in range(H):
            memcpy(xp + (c * Hp + h + pad) * Wp + pad, x + (c * H + h) * W, W * sizeof(real))


def _conv_forward_shift(const real[:, :, :, ::1] x, const real[:, :, :, ::1] wr,
                        const real[::1] b, real[:, :, :, ::1] out, real[:, ::1] xp_buf,
                        real[:, ::1] y_buf, Py_ssize_t pad, int threads):
    """out[n] = sum over (i, j) of wr[i, j] (F, C) @ padded x[n] shifted by (i, j), + b."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t HH = wr.shape[0], WW = wr.shape[1], F = wr.shape[2]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3], Hp = H + 2 * pad, Wp = W + 2 * pad
    cdef Py_ssize_t L = Ho * Wp, n, i, j, f, ho, wo
    cdef real* xp
    cdef real* y
    cdef real* o
    for n in prange(N, nogil=True, schedule="dynamic", num_threads=threads):
        xp = &xp_buf[threadid(), 0]
        y = &y_buf[threadid(), 0]
        _pad_image(&x[n, 0, 0, 0], xp, C, H, W, pad, Hp, Wp)
        for i in range(HH):
            for j in range(WW):
                # y (F, L) (+)= wr[i, j] (F, C) @ xp[:, i*Wp + j:][:, :L] (C, L)
                _gemm(False, False, <int>L, <int>F, <int>C, xp + i * Wp + j, <int>(Hp * Wp),
                      &wr[i, j, 0, 0], <int>C, 0 if i == 0 and j == 0 else 1, y, <int>L)
        o = &out[n, 0, 0, 0]
        for f in range(F):
            for ho in range(Ho):
                for wo in range(Wo):
                    o[(f * Ho + ho) * Wo + wo] = y[f * L + ho * Wp + wo] + b[f]


def _conv_backward_shift(const real[:, :, :, ::1] x, const real[:, :, :, ::1] wr,
                         const real[:, :, :, ::1] dout, real[:, :, :, ::1] dx,
                         real[:, :, :, :, ::1] dwr_part, double[:, ::1] db_part,
                         real[:, ::1] xp_buf, real[:, ::1] dy_buf, real[:, ::1] dxp_buf,
                         Py_ssize_t pad, int threads, bint need_dx):
    """Per image and offset (i, j): dwr[i, j] += dy @ shifted xp^T; shifted dxp += wr[i, j]^T dy."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t HH = wr.shape[0], WW = wr.shape[1], F = wr.shape[2]
    cdef Py_ssize_t Ho = dout.shape[2], Wo = dout.shape[3], Hp = H + 2 * pad, Wp = W + 2 * pad
    cdef Py_ssize_t L = Ho * Wp, n, t, i, j, f, c, h, ho, wo
    cdef real* xp
    cdef real* dy
    cdef real* dxp
    cdef const real* d
    cdef double acc
    for n in prange(N, nogil=True, schedule="dynamic", num_threads=threads):
        t = threadid()
        xp = &xp_buf[t, 0]
        dy = &dy_buf[t, 0]
        dxp = &dxp_buf[t, 0]
        _pad_image(&x[n, 0, 0, 0], xp, C, H, W, pad, Hp, Wp)
        d = &dout[n, 0, 0, 0]
        for f in range(F):  # dy (F, L): dout[n] with zeros in the wrap-around columns
            acc = 0
            for ho in range(Ho):
                for wo in range(Wo):
                    dy[f * L + ho * Wp + wo] = d[(f * Ho + ho) * Wo + wo]
                    acc = acc + d[(f * Ho + ho) * Wo + wo]
                for wo in range(Wo, Wp):
                    dy[f * L + ho * Wp + wo] = 0
            db_part[t, f] += acc
        if need_dx:
            memset(dxp, 0, (C * Hp + 1) * Wp * sizeof(real))
        for i in range(HH):
            for j in range(WW):
                # dwr[i, j] (F, C) += dy (F, L) @ shifted xp (C, L)^T
                _gemm(True, False, <int>C, <int>F, <int>L, xp + i * Wp + j, <int>(Hp * Wp), dy,
                      <int>L, 1, &dwr_part[t, i, j, 0, 0], <int>C)
                if need_dx:  # shifted dxp (C, L) += wr[i, j]^T (C, F) @ dy (F, L)
                    _gemm(False, True, <int>L, <int>C, <int>F, dy, <int>L, &wr[i, j, 0, 0],
                          <int>C, 1, dxp + i * Wp + j, <int>(Hp * Wp))
        if need_dx:
            for c in range(C):
                for h in range(H):
                    memcpy(&dx[n, c, h, 0], dxp + (c * Hp + h + pad) * Wp + pad,
                           W * sizeof(real))


# Which convolution algorithm: "auto" picks shifted windows for stride 1 when the padding widens
# the rows by at most a quarter (the wasted columns), in the forward pass only with at least
# SHIFT_MIN_CHANNELS input channels (with fewer, its multiplies are too thin): the choice that
# measured faster on a 2-core AVX-512 machine over 8 layer shapes. "im2col" or "shift" force
# one (shift still needs stride 1): a knob for tests and benchmarks.
CONV_PATH = "auto"
SHIFT_MIN_CHANNELS = 8


def _use_shift(C, W, stride, pad, Wo, backward):
    """True if the shifted-window algorithm runs for these sizes (see CONV_PATH)."""
    if stride != 1 or CONV_PATH == "im2col":
        return False
    if CONV_PATH == "shift":
        return True
    return 4 * (W + 2 * pad) <= 5 * Wo and (backward or C >= SHIFT_MIN_CHANNELS)


def _filters_by_offset(w, dtype):
    """w (F, C, HH, WW) as a contiguous (HH, WW, F, C) array: one (F, C) matrix per offset."""
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1), dtype)


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
    if out.size == 0:
        return out, (x, w, b, conv_param)
    threads = _threads_for(N)
    x, bias = np.ascontiguousarray(x), np.ascontiguousarray(b, dtype)
    with _SerialBlas(threads):
        if _use_shift(C, W, stride, pad, Wo, backward=False):
            Hp, Wp = H + 2 * pad, W + 2 * pad
            _conv_forward_shift(x, _filters_by_offset(w, dtype), bias, out,
                                np.empty((threads, (C * Hp + 1) * Wp), dtype),
                                np.empty((threads, F * Ho * Wp), dtype), pad, threads)
        else:
            _conv_forward(x, np.ascontiguousarray(w.reshape(F, K), dtype), bias,
                          out.reshape(N, F, P), np.empty((threads, K * P), dtype),
                          HH, WW, stride, pad, Ho, Wo, threads)
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache, need_dx=True):
    """Fast convolution backward pass: the same result as conv_backward_naive.

    Inputs: dout: (N, F, H_out, W_out) upstream gradient; cache: (x, w, b, conv_param) from
    conv_forward_fast; need_dx: False skips the input gradient, which a network's first layer
    does not need (about 40% of the work), and returns None for dx.
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
    dx = None
    if need_dx:  # every element is written below (np.zeros would zero fresh pages for nothing)
        dx = np.empty((N, C, H, W), dtype=dtype) if dout.size else np.zeros((N, C, H, W), dtype)
    dx_out = dx if need_dx else np.empty((1, 1, 1, 1), dtype)  # else the kernels' unused target
    db_part = np.zeros((threads, F), dtype=np.float64)
    shift = _use_shift(C, W, stride, pad, Wo, backward=True)
    dw_part = np.zeros((threads, HH, WW, F, C) if shift else (threads, F, K), dtype=dtype)
    if x.size and dout.size:
        dx_rows = (C * (H + 2 * pad) + 1) * (W + 2 * pad) if need_dx else 1
        x, d = np.ascontiguousarray(x), np.ascontiguousarray(dout, dtype)
        with _SerialBlas(threads):
            if shift:
                Hp, Wp = H + 2 * pad, W + 2 * pad
                _conv_backward_shift(x, _filters_by_offset(w, dtype), d, dx_out, dw_part, db_part,
                                     np.empty((threads, (C * Hp + 1) * Wp), dtype),
                                     np.empty((threads, F * Ho * Wp), dtype),
                                     np.empty((threads, dx_rows), dtype), pad, threads, need_dx)
            else:
                _conv_backward(x, np.ascontiguousarray(w.reshape(F, K), dtype),
                               d.reshape(N, F, P), dx_out, dw_part, db_part,
                               np.empty((threads, K * P), dtype), HH, WW, stride, pad, Ho, Wo,
                               threads, need_dx)
    dw = dw_part.sum(axis=0) if threads > 1 else dw_part[0]
    if shift:  # (HH, WW, F, C) -> (F, C, HH, WW)
        dw = dw.transpose(2, 3, 0, 1)
    return (dx, np.ascontiguousarray(dw.reshape(w.shape), w.dtype),
            db_part.sum(axis=0).astype(b.dtype, copy=False))


# ----------------------------------------------------------------------------------------------
# Max pooling. x is seen as (N*C, H, W) planes; arg holds the index, within its window, of each
# window's first maximum (row-major, as np.argmax; a NaN counts as the maximum, as in np.max).
# ----------------------------------------------------------------------------------------------

cdef inline bint _beats(real v, real best) noexcept nogil:
    """True if v replaces best as a window's maximum: larger, or the first NaN."""
    return (v > best) | ((v != v) & (best == best))  # no short-circuit: vectorises


cdef inline bint _pool2x2(const real* x, real* out, index_t* arg, Py_ssize_t W, Py_ssize_t Ho,
                          Py_ssize_t Wo) noexcept nogil:
    """The C 2x2 forward kernel for one plane; True if it found a NaN (or cannot run)."""
    if index_t is not uint8:
        return True
    elif real is float:
        return cs231n_pool2x2_forward_f(x, out, arg, W, Ho, Wo)
    else:
        return cs231n_pool2x2_forward_d(x, out, arg, W, Ho, Wo)


cdef inline void _unpool2x2(const real* dout, const index_t* arg, real* dx, Py_ssize_t W,
                            Py_ssize_t Ho, Py_ssize_t Wo) noexcept nogil:
    """The C 2x2 backward kernel for one plane (uint8 argmax only)."""
    if index_t is uint8:
        if real is float:
            cs231n_pool2x2_backward_f(dout, arg, dx, W, Ho, Wo)
        else:
            cs231n_pool2x2_backward_d(dout, arg, dx, W, Ho, Wo)


def _pool_tiled_forward(const real[:, :, ::1] x, real[:, :, ::1] out, index_t[:, :, ::1] arg,
                        Py_ssize_t PH, Py_ssize_t PW, int threads):
    """Windows that tile x: x read as (planes, H_out, PH, W_out, PW), each window in place."""
    cdef Py_ssize_t planes = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = out.shape[1], Wo = out.shape[2], q, ho, wo, i, j, k
    cdef const real* win
    cdef real best, v
    cdef bint general = not (PH == 2 and PW == 2)
    for q in prange(planes, nogil=True, schedule="dynamic", chunksize=32, num_threads=threads):
        if not general and not _pool2x2(&x[q, 0, 0], &out[q, 0, 0], &arg[q, 0, 0], W, Ho, Wo):
            continue
        for ho in range(Ho):
            for wo in range(Wo):
                win = &x[q, ho * PH, wo * PW]
                best = win[0]
                k = 0
                for i in range(PH):
                    for j in range(PW):
                        v = win[i * W + j]
                        if _beats(v, best):
                            best = v
                            k = i * PW + j
                out[q, ho, wo] = best
                arg[q, ho, wo] = <index_t>k


def _pool_tiled_backward(const real[:, :, ::1] dout, const index_t[:, :, ::1] arg,
                         real[:, :, ::1] dx, Py_ssize_t PH, Py_ssize_t PW, int threads):
    """Every dx element is written once: the window's dout at its argmax, 0 elsewhere."""
    cdef Py_ssize_t planes = dx.shape[0], W = dx.shape[2]
    cdef Py_ssize_t Ho = dout.shape[1], Wo = dout.shape[2], q, ho, wo, i, j, k
    cdef real* win
    cdef real g
    if PH == 2 and PW == 2 and index_t is uint8:
        for q in prange(planes, nogil=True, schedule="dynamic", chunksize=32, num_threads=threads):
            _unpool2x2(&dout[q, 0, 0], &arg[q, 0, 0], &dx[q, 0, 0], W, Ho, Wo)
        return
    for q in prange(planes, nogil=True, schedule="dynamic", chunksize=32, num_threads=threads):
        for ho in range(Ho):
            for wo in range(Wo):
                win = &dx[q, ho * PH, wo * PW]
                g = dout[q, ho, wo]
                k = arg[q, ho, wo]
                for i in range(PH):
                    for j in range(PW):
                        win[i * W + j] = g if i * PW + j == k else 0


def _pool_im2col_forward(const real[:, :, ::1] x, real[:, :, ::1] out, index_t[:, :, ::1] arg,
                         real[:, ::1] cols, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t stride,
                         int threads):
    """Any windows: im2col of each plane (PH*PW, H_out*W_out), then the maximum of each column."""
    cdef Py_ssize_t planes = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = out.shape[1], Wo = out.shape[2], P = Ho * Wo, q, r, p
    cdef real* col
    cdef real* o
    cdef index_t* a
    cdef real v
    for q in prange(planes, nogil=True, schedule="dynamic", chunksize=32, num_threads=threads):
        col = &cols[threadid(), 0]
        o = &out[q, 0, 0]
        a = &arg[q, 0, 0]
        _im2col_image(&x[q, 0, 0], col, P, 1, H, W, PH, PW, stride, 0, Ho, Wo)
        for p in range(P):
            o[p] = col[p]
            a[p] = 0
        for r in range(1, PH * PW):
            for p in range(P):
                v = col[r * P + p]
                if _beats(v, o[p]):
                    o[p] = v
                    a[p] = <index_t>r


def _pool_scatter_backward(const real[:, :, ::1] dout, const index_t[:, :, ::1] arg,
                           real[:, :, ::1] dx, Py_ssize_t PW, Py_ssize_t stride, int threads):
    """Any windows: dx = 0, then each window's dout is added at its argmax (overlaps add up)."""
    cdef Py_ssize_t planes = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t Ho = dout.shape[1], Wo = dout.shape[2], q, ho, wo, k
    cdef real* plane
    for q in prange(planes, nogil=True, schedule="dynamic", chunksize=32, num_threads=threads):
        plane = &dx[q, 0, 0]
        memset(plane, 0, H * W * sizeof(real))
        for ho in range(Ho):
            for wo in range(Wo):
                k = arg[q, ho, wo]
                plane[(ho * stride + k // PW) * W + wo * stride + k % PW] += dout[q, ho, wo]


# Below this many input values a pooling pass takes well under a millisecond on one core, less
# than waking a second core can save (and far less on a busy machine).
POOL_PARALLEL_MIN = 1 << 20


def _pool_threads(size):
    """Threads for a pooling pass over `size` input values: 1 when small, else all of them."""
    return 1 if size < POOL_PARALLEL_MIN else max(1, cs231n_omp_threads())


def max_pool_forward_fast(x, pool_param):
    """Fast max pooling forward pass: the same result as max_pool_forward_naive.

    Inputs: x: (N, C, H, W) float32 or float64; pool_param: {'pool_height': int,
    'pool_width': int, 'stride': int}.
    Returns: out: (N, C, H_out, W_out) in x's dtype; cache: (x, pool_param, argmax), argmax
    (N, C, H_out, W_out) uint8 (int32 for windows over 256 values): the position, row-major
    within its window, of each window's first maximum.
    """
    N, C, H, W, PH, PW, stride, Ho, Wo = pool_shapes(x, pool_param, "max_pool_forward_fast")
    dtype = _float_dtype(x, "max_pool_forward_fast")
    out = np.empty((N, C, Ho, Wo), dtype=dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.uint8 if PH * PW <= 256 else np.int32)
    if out.size:
        threads = _pool_threads(x.size)
        xs = np.ascontiguousarray(x).reshape(N * C, H, W)
        o, a = out.reshape(N * C, Ho, Wo), argmax.reshape(N * C, Ho, Wo)
        if PH == PW == stride:
            _pool_tiled_forward(xs, o, a, PH, PW, threads)
        else:
            cols = np.empty((threads, PH * PW * Ho * Wo), dtype=dtype)
            _pool_im2col_forward(xs, o, a, cols, PH, PW, stride, threads)
    return out, (x, pool_param, argmax)


def max_pool_backward_fast(dout, cache):
    """Fast max pooling backward pass: the same result as max_pool_backward_naive.

    Inputs: dout: (N, C, H_out, W_out) upstream gradient; cache: (x, pool_param, argmax) from
    max_pool_forward_fast.
    Returns: dx: (N, C, H, W) in x's dtype; each window's gradient goes to its first maximum.
    """
    if not isinstance(cache, tuple) or len(cache) != 3:
        raise ValueError("max_pool_backward_fast: cache must be the (x, pool_param, argmax) that "
                         "max_pool_forward_fast returned; a naive layer's cache has no argmax")
    x, pool_param, argmax = cache
    N, C, H, W, PH, PW, stride, Ho, Wo = pool_shapes(x, pool_param, "max_pool_backward_fast")
    dtype = _float_dtype(x, "max_pool_backward_fast")
    if getattr(dout, "shape", None) != (N, C, Ho, Wo):
        raise ValueError(f"max_pool_backward_fast: dout must be shaped like the forward output "
                         f"{(N, C, Ho, Wo)}, got {getattr(dout, 'shape', type(dout).__name__)}")
    dx = np.empty((N, C, H, W), dtype=dtype)
    if dx.size == 0:
        return dx
    d = np.ascontiguousarray(dout, dtype).reshape(N * C, Ho, Wo)
    a, dxs = argmax.reshape(N * C, Ho, Wo), dx.reshape(N * C, H, W)
    threads = _pool_threads(dx.size)
    if PH == PW == stride:
        _pool_tiled_backward(d, a, dxs, PH, PW, threads)
    else:
        _pool_scatter_backward(d, a, dxs, PW, stride, threads)
    return dx
