"""`make bench`: every benchmark in one run, then the issue's targets as PASS/MISS lines.

Run: python -m bench [--budget SECONDS]  (seconds of repetitions per measurement)
"""
import argparse
import os

from bench import conv, train
from bench.common import load_torch, machine_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds of repetitions per measurement (training: 3x this)")
    args = parser.parse_args(argv)
    torch = load_torch()
    print("\n".join(machine_report(torch)))
    lines = conv.run(args.budget, torch) + train.run(3 * args.budget, torch)
    print("\nTargets (times are medians; a busy machine makes every ratio noisier)")
    print("\n".join(lines))
    print("load average at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
