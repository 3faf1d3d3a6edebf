"""Benchmarks of the fast layers, printed as tables of times and ratios measured in one run.

`make bench` (python -m bench) runs them all; `python -m bench.conv` or `python -m bench.train`
runs one. Every contender uses all cores. PyTorch is optional: when it is not installed its
columns are skipped with a note.
"""
