"""`make bench`: every benchmark in one run, then the issue's targets as PASS/MISS lines.

Run: python -m bench [--budget SECONDS] [--single-core]
(--budget is per measurement; training gets three times as much)
"""
import os

from bench import conv, train
from bench.common import load_torch, machine_report, parse_args


def main():
    budget = parse_args(__doc__, "bench", 1.0)
    torch = load_torch()
    print("\n".join(machine_report(torch)))
    lines = conv.run(budget, torch) + train.run(3 * budget, torch)
    print("\nTargets (times are medians; a busy machine makes every ratio noisier)")
    print("\n".join(lines))
    print("load average at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
