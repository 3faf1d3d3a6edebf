"""The verdict on one untrusted wire.Reply, made in the grader's process: its outputs compared
with the reference's (names, dtypes, shapes, finiteness, relative error), or judged by the
case's own verdict or summary. Returns (passed, message for the student)."""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from autograder.hidden.case import Case
from autograder.judge import wire

log = logging.getLogger(__name__)


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|, 1e-8), the notebooks' measure (0 for empty arrays)."""
    if got.size == 0:
        return 0.0
    a, b = got.astype(np.float64), expected.astype(np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


def _dtype_problem(got: np.dtype, expected: np.dtype) -> str | None:
    if expected.kind == "f":
        if got.kind != "f":
            return f"returned {got}, expected {expected}"
        if got.itemsize < expected.itemsize:
            return f"returned {got}, expected {expected}"
    elif expected.kind in "iu":
        if got.kind not in "iu":
            return f"returned {got}, expected integers"
    elif got.kind != expected.kind:
        return f"returned {got}, expected {expected}"
    return None


def compare(case: Case, reply: wire.Reply, expected: Mapping[str, np.ndarray],
            where: str) -> tuple[bool, str]:
    """(passed, message) for one reply (untrusted) against the expected outputs."""
    if reply.status == "error":
        kind, message, fn = reply.error or "an error", reply.message, reply.where
        if kind == "BadOutput":
            return False, f"{message} {where}"
        if kind == "ImportError" and message.startswith("importing"):
            return False, message
        text = f"raised {kind}" + (f" in {fn}" if fn else "") + (f": {message}" if message else "")
        return False, f"{text} {where}"
    if reply.status != "ok":
        return False, f"the worker sent an unexpected reply {where}"
    got = reply.outputs
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing or extra:
        return False, (f"outputs {sorted(got)[:8]} do not match the expected {sorted(expected)} "
                       f"{where}")
    worst, worst_key = 0.0, None
    for key, want in expected.items():
        have = got[key]
        if have.dtype.kind == "U":
            return False, f"{key} is text, expected numbers {where}"
        problem = _dtype_problem(have.dtype, want.dtype)
        if problem:
            return False, f"{key}: {problem} {where}"
        if have.shape != want.shape:
            return False, f"{key} has shape {have.shape}, expected {want.shape} {where}"
        if have.dtype.kind == "f" and not np.all(np.isfinite(have)):
            return False, f"{key} contains nan or inf {where}"
        tol = case.tolerance(key)
        if tol == 0 or want.dtype.kind in "biu":
            if not np.array_equal(have, want):
                return False, f"{key} is wrong {where}"
            continue
        err = relative_error(have, want)
        if not err <= tol:
            return False, f"relative error {err:.1e} > {tol:g} in {key} {where}"
        if err >= worst:
            worst, worst_key = err, key
    return True, "passed" + (f" (largest relative error {worst:.0e}, in {worst_key})"
                             if worst_key is not None and worst > 0 else "")


def verdict(case: Case, inputs: wire.Arrays, reply: wire.Reply, where: str) -> tuple[bool, str]:
    """(passed, message) of case.verdict, run here on a reply (untrusted)."""
    if reply.status != "ok" or case.verdict is None:
        return compare(case, reply, {}, where)
    try:
        passed, message = case.verdict(inputs, reply.outputs)
    except Exception as exc:  # noqa: BLE001  (a verdict is ours, but the arrays are not)
        log.warning("case %s: the verdict raised %r", case.key, exc)
        return False, f"its results could not be evaluated {where}"
    return passed, f"{message} {where}"


def summarized(case: Case, inputs: wire.Arrays, reply: wire.Reply) -> wire.Reply:
    """A reply (untrusted) with its outputs reduced by case.summary, here."""
    if reply.status != "ok" or case.summary is None:
        return reply
    try:
        outputs = case.summary(inputs, reply.outputs)
    except Exception as exc:  # noqa: BLE001  (a summary is ours, but the arrays are not)
        log.warning("case %s: the summary raised %r", case.key, exc)
        return wire.Reply("error", error="BadOutput", message="its results could not be evaluated")
    return wire.Reply("ok", outputs)
