"""What every benchmark shares: timing, the optional PyTorch, the machine report, verdicts."""
import argparse
import os
import statistics
import sys
import time

import numpy as np

CORES = os.cpu_count() or 1
# What timed() measures: wall time on all cores, or with --single-core the CPU time of one core,
# which other people's jobs on a shared machine barely disturb.
MODE = {"clock": time.perf_counter, "threads": CORES}


def load_torch():
    """The torch module using every core the run may use, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(MODE["threads"])
    return torch


def timed(contenders, min_rounds=5, budget=1.0, max_rounds=200):
    """Median time of each contender (wall, or CPU with --single-core), in interleaved rounds.

    Each round calls every contender once, so that a change in the machine's load (other
    people's jobs) hits all of them alike and their ratios stay fair; one untimed round first.
    Inputs: contenders: dict name -> fn, or name -> (fn, setup) where setup() returns fn's
    arguments and runs untimed before each call; at least min_rounds rounds, more until
    `budget` seconds per contender have gone or max_rounds rounds.
    Returns: dict name -> median seconds (float).
    """
    calls = {name: c if isinstance(c, tuple) else (c, None) for name, c in contenders.items()}
    times = {name: [] for name in calls}
    clock, start = MODE["clock"], time.perf_counter()
    for rounds in range(max_rounds + 1):
        if rounds > min_rounds and time.perf_counter() - start > budget * len(calls):
            break
        for name, (fn, setup) in calls.items():
            args = setup() if setup else ()
            pause(0.002)  # the previous contender's idle threads stop spinning
            t0 = clock()
            fn(*args)
            if rounds:
                times[name].append(clock() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def pause(seconds=0.2):
    """Sleep, so that worker threads left spinning by the previous contender go to sleep."""
    time.sleep(seconds)


def machine_report(torch):
    """Lines describing what runs: cores, load, BLAS kernels and threads, OpenMP, PyTorch."""
    from cs231n import fast_layers
    timing = ("CPU time on one core (--single-core)" if MODE["threads"] == 1 and CORES > 1
              else f"wall time on {CORES} cores")
    lines = [f"cores: {CORES}; timing: {timing}; load average (1, 5, 15 min): "
             + ", ".join(f"{v:.2f}" for v in os.getloadavg())]
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            lines.append(f"{lib['user_api']}: {lib['internal_api']} {lib.get('version')} "
                         f"kernel {lib.get('architecture')}, {lib['num_threads']} threads "
                         f"({os.path.basename(lib['filepath'])})")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS kernel unknown")
    for var, effect in (("OPENBLAS_CORETYPE", "it can slow numpy's OpenBLAS"),
                        ("OPENBLAS_L2_SIZE", "it can slow numpy's OpenBLAS"),
                        ("OMP_NUM_THREADS", "it sets the OpenMP threads of the fast layers")):
        if var in os.environ:
            lines.append(f"note: {var}={os.environ[var]} is set ({effect})")
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


def parse_args(doc, module, default_budget):
    """Parse --budget SECONDS and --single-core; set MODE; return the budget.

    --single-core re-runs `python -m module` with OMP_NUM_THREADS=1 if needed, holds BLAS and
    PyTorch to one thread and times CPU seconds instead of wall seconds.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--budget", type=float, default=default_budget,
                        help="seconds of repetitions per measurement (at least 5 calls)")
    parser.add_argument("--single-core", action="store_true",
                        help="everyone on one core, timed in CPU seconds: numbers that other "
                             "jobs on a busy machine barely disturb (not the multi-core speed)")
    args = parser.parse_args()
    if args.single_core:
        if os.environ.get("OMP_NUM_THREADS") != "1":  # OpenMP reads it once, at start-up
            os.environ["OMP_NUM_THREADS"] = "1"
            os.execv(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]])
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
        MODE.update(clock=time.process_time, threads=1)
    return args.budget
