"""The reference's outputs of the hidden cases: computed once per reference version (its .py
files, the probes, the cases and the salt), in a trusted worker, and kept in this process."""
from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autograder.budget import TimeBudget
from autograder.config import ROOT
from autograder.errors import JudgeError
from autograder.hidden.case import Case
from autograder.judge import wire
from autograder.judge.compare import verdict
from autograder.judge.folder import HERE, prepare
from autograder.judge.process import CaseTimeout, ImportBroken, Worker, WorkerGone, limits

REFERENCE_MEMORY_MB = 4096  # the reference's worker: ours, trusted, so only a guard
Expected = dict[str, tuple[wire.Arrays, wire.Arrays]]  # case key -> (inputs, outputs)
_EXPECTED: dict[tuple[str, str, int], Expected] = {}


def _digest(reference_pkg_dir: Path, cases: Sequence[Case]) -> str:
    h = hashlib.sha256()
    for path in sorted((Path(reference_pkg_dir) / "cs231n").rglob("*.py")):
        h.update(str(path).encode() + b"\0" + path.read_bytes())
    hidden = ROOT / "autograder" / "hidden"
    for path in (HERE / "probes.py", hidden / "case.py", hidden / "cases.py"):
        h.update(path.read_bytes())
    h.update(repr([c.key for c in cases]).encode())
    return h.hexdigest()


def expected_outputs(reference_pkg_dir: Path, cases: Sequence[Case], salt: int,
                     budget: TimeBudget) -> Expected:
    """{case key: (inputs, outputs)} from the reference package, run in a trusted worker within
    the time one submission gets (budget.judge_boot to start, budget.judge_total for all cases).

    Raises JudgeError if the reference fails a case: a case the reference cannot pass is a
    bug in the case or the probe, not something to grade students on.
    """
    key = (str(Path(reference_pkg_dir).resolve()), _digest(reference_pkg_dir, cases), salt)
    if key in _EXPECTED:
        return _EXPECTED[key]
    results: Expected = {}
    with tempfile.TemporaryDirectory(prefix="cs231n-reference-") as tmp:
        w, found = prepare(tmp, reference_pkg_dir)
        if not found:
            raise JudgeError(f"no cs231n package in the reference folder {reference_pkg_dir}")
        worker = Worker(w, limits(budget, REFERENCE_MEMORY_MB), None, Path(tmp) / "stderr",
                        budget.judge_boot)
        try:
            worker.start(budget.judge_boot)
        except ImportBroken as exc:
            raise JudgeError(f"the reference package cannot be imported: {exc}") from None
        deadline = time.monotonic() + budget.judge_total
        try:
            for case in cases:
                results[case.key] = _reference_case(worker, case, case.inputs(salt), deadline)
        finally:
            worker.stop()
    _EXPECTED[key] = results
    return results


def _reference_case(worker: Worker, case: Case, inputs: wire.Arrays,
                    deadline: float) -> tuple[wire.Arrays, wire.Arrays]:
    """(inputs, outputs) of one case on the reference's worker; JudgeError if it fails."""
    try:
        reply = worker.ask(wire.Request(case.probe, inputs), deadline - time.monotonic(), 1 << 30)
    except (CaseTimeout, WorkerGone) as exc:
        raise JudgeError(f"the reference failed hidden case {case.key}: "
                         f"{type(exc).__name__} {exc}") from None
    if reply.status != "ok":
        raise JudgeError(f"the reference failed hidden case {case.key}: "
                         f"{reply.error}: {reply.message}")
    outputs = reply.outputs
    bad = [k for k, v in outputs.items() if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
    if bad:
        raise JudgeError(f"the reference's output {bad} of case {case.key} is not finite")
    passed, message = verdict(case, inputs, reply, "") if case.verdict else (True, "")
    if not passed:
        raise JudgeError(f"the reference failed hidden case {case.key}: {message}")
    return inputs, outputs
