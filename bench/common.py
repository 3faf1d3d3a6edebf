"""What every benchmark shares: timing, the optional PyTorch, the machine report, verdicts."""
import argparse
import os
import statistics
import time

import numpy as np

CORES = os.cpu_count() or 1


def load_torch():
    """The torch module using all cores, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(CORES)
    return torch


def timed(fn, setup=None, min_reps=5, budget=1.0, max_reps=200):
    """Median wall time of fn(*setup()) in seconds, after one untimed warm-up call.

    Inputs: fn: callable; setup: callable returning fn's arguments, run untimed before each
    call (None: no arguments); at least min_reps calls, more until `budget` seconds have gone
    or max_reps calls. Returns: float seconds.
    """
    args = setup() if setup else ()
    fn(*args)
    times, start = [], time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget and len(times) < max_reps):
        args = setup() if setup else ()
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pause():
    """Let the previous contender's spinning worker threads go to sleep before the next one."""
    time.sleep(0.2)


def machine_report(torch):
    """Lines describing what runs: cores, load, BLAS kernels and threads, OpenMP, PyTorch."""
    from cs231n import fast_layers
    lines = [f"cores: {CORES}; load average (1, 5, 15 min): "
             + ", ".join(f"{v:.2f}" for v in os.getloadavg())]
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            lines.append(f"{lib['user_api']}: {lib['internal_api']} {lib.get('version')} "
                         f"kernel {lib.get('architecture')}, {lib['num_threads']} threads "
                         f"({os.path.basename(lib['filepath'])})")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS kernel unknown")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            lines.append(f"note: {var}={os.environ[var]} is set (it can slow numpy's OpenBLAS)")
    omp = fast_layers.openmp_threads()
    lines.append("fast layers: OpenMP " + (f"with {omp} threads" if omp else "not built in"))
    lines.append(f"numpy {np.__version__}; " + (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads" if torch
        else "torch not installed: its columns are skipped"))
    return lines


def verdict(name, value, target, higher_is_better=False):
    """One line 'PASS/MISS name: value (target)'; value None means not measured."""
    if value is None:
        return f"  n/a   {name}: not measured (needs PyTorch)"
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"  {'PASS' if ok else 'MISS'}  {name}: {value:.3g} (target {sign} {target})"


def fmt_ms(seconds):
    """Milliseconds with three significant figures, '-' for None."""
    return "-" if seconds is None else f"{seconds * 1e3:.3g}"


def ratio(a, b):
    """a / b, or None when either is missing."""
    return None if a is None or b is None else a / b


def parse_budget(doc, default):
    """Parse the one command-line option of every benchmark: --budget SECONDS."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--budget", type=float, default=default,
                        help="seconds of repetitions per measurement (at least 5 calls)")
    return parser.parse_args().budget
