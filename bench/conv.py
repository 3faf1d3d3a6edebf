"""Convolution and max pooling: naive, fast, PyTorch (CPU) and the matrix-multiply limit.

For each shape and dtype: forward and backward medians, GFLOP/s, fast/torch and fast/GEMM
ratios, and the peak extra memory of one fast forward + backward, all from the same run. The
"GEMM" row times numpy matrix multiplies of the convolution's own sizes: forward
(F, K) x (K, N*P), backward dw (F, N*P) x (N*P, K) plus dx (K, F) x (F, N*P), with K = C*HH*WW
and P = H_out*W_out; a convolution by im2col cannot beat them by much.

Run: python -m bench.conv [--budget SECONDS] [--single-core]
"""
import tracemalloc

import numpy as np

from bench.common import (
    fmt_ms,
    load_torch,
    machine_report,
    parse_args,
    ratio,
    timed,
    verdict,
)
from cs231n import fast_layers as fl
from cs231n import layers as naive

# name: (x shape, w shape, stride, pad, what it is)
CONV_SHAPES = {
    "S1": ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1, "the notebook's naive-vs-fast comparison"),
    "S2": ((50, 3, 32, 32), (32, 3, 7, 7), 1, 3, "ThreeLayerConvNet's first conv"),
    "S3": ((64, 64, 32, 32), (64, 64, 3, 3), 1, 1, "a 64-channel 3x3 layer"),
    "S4": ((128, 3, 32, 32), (16, 3, 3, 3), 1, 1, "many images, few filters"),
}
POOL_SHAPES = {"P1": (100, 3, 32, 32), "P2": (64, 64, 32, 32)}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _peak_extra_bytes(fn):
    """Peak bytes allocated (numpy buffers included) while fn() runs, above what existed before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _gemm_contenders(F, K, NP, dtype):
    """The convolution's three matrix multiplies in numpy (forward, dw, dx), for timed()."""
    rng = np.random.default_rng(0)
    w, cols = rng.random((F, K), dtype=dtype), rng.random((K, NP), dtype=dtype)
    dout = rng.random((F, NP), dtype=dtype)
    out, dw, dcols = np.empty((F, NP), dtype), np.empty((F, K), dtype), np.empty((K, NP), dtype)
    return {"gemm_f": lambda: np.matmul(w, cols, out=out),
            "gemm_dw": lambda: np.matmul(dout, cols.T, out=dw),
            "gemm_dx": lambda: np.matmul(w.T, dout, out=dcols)}


def _torch_conv_contenders(torch, x, w, b, stride, pad, dout):
    """torch.nn.functional.conv2d forward, and its autograd backward (dx, dw, db), for timed()."""
    conv2d = torch.nn.functional.conv2d
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    td = torch.from_numpy(dout)
    return {"torch_f": lambda: conv2d(tx, tw, tb, stride=stride, padding=pad),
            "torch_b": (lambda y: torch.autograd.grad(y, (tx, tw, tb), td),
                        lambda: (conv2d(tx, tw, tb, stride=stride, padding=pad),))}


def conv_case(name, dtype, torch, budget):
    """Measure one convolution shape in one dtype; returns a dict of seconds, bytes, flops."""
    x_shape, w_shape, stride, pad, _ = CONV_SHAPES[name]
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    conv_param = {"stride": stride, "pad": pad}
    out, cache = fl.conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    (N, C, _, _), (F, _, HH, WW), (_, _, Ho, Wo) = x.shape, w.shape, out.shape
    K, NP = C * HH * WW, N * Ho * Wo
    r = {"flops": 2.0 * F * K * NP, "cols_bytes": K * NP * np.dtype(dtype).itemsize,
         "algorithm": "/".join(
             "shifted windows" if fl._use_shift(C, x.shape[3], stride, pad, Wo, backward)
             else "im2col" for backward in (False, True)),
         "torch_f": None, "torch_b": None, "naive_f": None, "naive_b": None}
    r["memory"] = _peak_extra_bytes(
        lambda: fl.conv_backward_fast(dout, fl.conv_forward_fast(x, w, b, conv_param)[1]))
    contenders = {"fast_f": lambda: fl.conv_forward_fast(x, w, b, conv_param),
                  "fast_b": lambda: fl.conv_backward_fast(dout, cache),
                  **_gemm_contenders(F, K, NP, dtype)}
    if torch is not None:
        contenders.update(_torch_conv_contenders(torch, x, w, b, stride, pad, dout))
    r.update(timed(contenders, budget=budget))
    r["gemm_b"] = r["gemm_dw"] + r["gemm_dx"]
    if name == "S1":
        naive_cache = naive.conv_forward_naive(x, w, b, conv_param)[1]
        r.update(timed({"naive_f": lambda: naive.conv_forward_naive(x, w, b, conv_param),
                        "naive_b": lambda: naive.conv_backward_naive(dout, naive_cache)},
                       min_rounds=3, budget=budget))
    return r


def _total(r, key):
    return None if r[key + "_f"] is None else r[key + "_f"] + r[key + "_b"]


def print_conv(name, dtype, r):
    """The table of one convolution case."""
    x_shape, w_shape, stride, pad, what = CONV_SHAPES[name]
    print(f"\n{name} {np.dtype(dtype).name}: x {x_shape}, w {w_shape}, stride {stride}, pad {pad} "
          f"({what}); fast fwd/bwd: {r['algorithm']}; "
          f"im2col matrix {r['cols_bytes'] / 2**20:.1f} MiB")
    print(f"  {'':6} {'fwd ms':>9} {'bwd ms':>9} {'total ms':>9} {'fwd GF/s':>9} {'bwd GF/s':>9}")
    for key in ("naive", "fast", "torch", "gemm"):
        f, b = r[key + "_f"], r[key + "_b"]
        if f is None:
            continue
        print(f"  {key:6} {fmt_ms(f):>9} {fmt_ms(b):>9} {fmt_ms(f + b):>9} "
              f"{r['flops'] / f / 1e9:9.1f} {2 * r['flops'] / b / 1e9:9.1f}")
    parts = [(f"fast/GEMM fwd {r['fast_f'] / r['gemm_f']:.2f}, "
              f"bwd {r['fast_b'] / r['gemm_b']:.2f}, "
              f"total {_total(r, 'fast') / _total(r, 'gemm'):.2f}")]
    if r["torch_f"] is not None:
        parts.append(f"fast/torch fwd {r['fast_f'] / r['torch_f']:.2f}, "
                     f"bwd {r['fast_b'] / r['torch_b']:.2f}, "
                     f"total {_total(r, 'fast') / _total(r, 'torch'):.2f}")
    if r["naive_f"] is not None:
        parts.append(f"naive/fast {_total(r, 'naive') / _total(r, 'fast'):.0f}x")
    print("  " + "; ".join(parts))
    print(f"  peak extra memory of fast forward+backward: {r['memory'] / 2**20:.1f} MiB = "
          f"{r['memory'] / r['cols_bytes']:.2f} x the im2col matrix")


def pool_case(name, dtype, torch, budget):
    """Measure 2x2 stride-2 max pooling on one shape in one dtype; returns a dict of seconds."""
    x = np.random.default_rng(2).standard_normal(POOL_SHAPES[name]).astype(dtype)
    out, cache = fl.max_pool_forward_fast(x, POOL)
    dout = np.ones_like(out)
    naive_cache = naive.max_pool_forward_naive(x, POOL)[1]
    contenders = {"fast_f": lambda: fl.max_pool_forward_fast(x, POOL),
                  "fast_b": lambda: fl.max_pool_backward_fast(dout, cache)}
    r = {"torch_f": None, "torch_b": None}
    if torch is not None:
        pool2d = torch.nn.functional.max_pool2d
        tx, td = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(dout)
        contenders["torch_f"] = lambda: pool2d(tx, 2, 2)
        contenders["torch_b"] = (lambda y: torch.autograd.grad(y, tx, td),
                                 lambda: (pool2d(tx, 2, 2),))
    r.update(timed(contenders, budget=budget))
    r.update(timed({"naive_f": lambda: naive.max_pool_forward_naive(x, POOL),
                    "naive_b": lambda: naive.max_pool_backward_naive(dout, naive_cache)},
                   min_rounds=3, budget=budget))
    return r


def print_pool(name, dtype, r):
    """The table of one pooling case."""
    print(f"\n{name} {np.dtype(dtype).name}: max pool 2x2 stride 2 on x {POOL_SHAPES[name]}")
    print(f"  {'':6} {'fwd ms':>9} {'bwd ms':>9} {'total ms':>9}")
    for key in ("naive", "fast", "torch"):
        if r[key + "_f"] is not None:
            print(f"  {key:6} {fmt_ms(r[key + '_f']):>9} {fmt_ms(r[key + '_b']):>9} "
                  f"{fmt_ms(_total(r, key)):>9}")
    line = f"  naive/fast {_total(r, 'naive') / _total(r, 'fast'):.0f}x"
    if r["torch_f"] is not None:
        line += f"; fast/torch total {_total(r, 'fast') / _total(r, 'torch'):.2f}"
    print(line)


def run(budget=1.0, torch=None):
    """Measure and print every case; return the verdict lines of the issue's targets."""
    results = {}
    for name in CONV_SHAPES:
        for dtype in (np.float32, np.float64):
            results[name, dtype] = r = conv_case(name, dtype, torch, budget)
            print_conv(name, dtype, r)
    pools = {}
    for name in POOL_SHAPES:
        for dtype in (np.float32, np.float64):
            pools[name, dtype] = r = pool_case(name, dtype, torch, budget)
            print_pool(name, dtype, r)
    return conv_verdicts(results) + pool_verdicts(pools)


def conv_verdicts(results):
    """The issue's convolution targets, each as a PASS/MISS line."""
    f32, f64 = np.float32, np.float64
    lines = [verdict(f"{s} float32 fast/torch forward+backward",
                     ratio(_total(results[s, f32], "fast"), _total(results[s, f32], "torch")), 1.25)
             for s in ("S2", "S3")]
    s3 = results["S3", f64]
    lines.append(verdict("S3 float64 fast/GEMMs forward+backward",
                         _total(s3, "fast") / _total(s3, "gemm"), 1.3))
    s3 = results["S3", f32]
    lines.append(verdict("S3 float32 fast/GEMM forward", s3["fast_f"] / s3["gemm_f"], 1.4))
    for dtype in (f32, f64):
        s1 = results["S1", dtype]
        lines.append(verdict(f"S1 {np.dtype(dtype).name} naive/fast forward+backward",
                             _total(s1, "naive") / _total(s1, "fast"), 300, higher_is_better=True))
    worst = max(r["memory"] / r["cols_bytes"] for r in results.values())
    lines.append(verdict("peak extra memory / im2col matrix (worst case)", worst, 2))
    return lines


def pool_verdicts(pools):
    """The issue's pooling targets, each as a PASS/MISS line."""
    lines = []
    for (name, dtype), r in pools.items():
        label = f"pool {name} {np.dtype(dtype).name}"
        lines.append(verdict(f"{label} fast/torch",
                             ratio(_total(r, "fast"), _total(r, "torch")), 1.5))
        lines.append(verdict(f"{label} naive/fast", _total(r, "naive") / _total(r, "fast"), 50,
                             higher_is_better=True))
    return lines


def main():
    budget = parse_args(__doc__, "bench.conv", 1.0)
    torch = load_torch()
    print("\n".join(machine_report(torch)))
    lines = run(budget, torch)
    print("\nTargets\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
