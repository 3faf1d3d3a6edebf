"""One hidden case: which task it judges, with which probe, on which inputs, for how many points."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]  # named arrays: a case's inputs, a probe's outputs
Verdict = Callable[[Arrays, Arrays], tuple[bool, str]]  # (inputs, outputs) -> (passed, message)
Summary = Callable[[Arrays, Arrays], Arrays]  # (inputs, outputs) -> the outputs compared


@dataclass(frozen=True)
class Case:
    """A named probe call with deterministic inputs.

    task: the student task (a name from cs231n.tasks.find_tasks) the points belong to.
    name: short and unique within the task, e.g. "stride2_pad1_nonsquare".
    points: what passing is worth; a case passes or fails whole.
    probe: a name in autograder.judge.probes.PROBES.
    make: rng -> {input name: array or scalar or str}; rng is seeded from the case's name.
    tol: largest relative error allowed, one number or {output name: tol, "*": default}.
    show: inputs named in feedback (arrays by shape, other values as they are); by default
    every float array of at least one dimension, by shape. Never name labels or values here.
    verdict: None to compare the outputs with the reference's; else `verdict(inputs, outputs)
    -> (passed, message)` decides in the grader's process from the returned arrays (untrusted:
    it checks their shapes and dtypes itself), for a task with more than one right answer (a
    random mask). Never let the probe, which runs in the student's process, decide.
    summary: None, or `summary(inputs, outputs) -> outputs` applied in the grader's process to
    the reference's outputs and to the student's before they are compared (the laws of an
    initialisation: shapes, spread, zeros), for the same reason.
    """

    task: str
    name: str
    points: float
    probe: str
    make: Callable[[np.random.Generator], Mapping[str, Any]]
    tol: float | Mapping[str, float] = 1e-7
    show: tuple[str, ...] | None = None
    verdict: Verdict | None = None
    summary: Summary | None = None

    @property
    def key(self) -> str:
        return f"{self.task}/{self.name}"

    def inputs(self, salt: int = 0) -> Arrays:
        """The case's inputs as arrays (deterministic: seeded by salt and the case's key)."""
        rng = np.random.default_rng([salt, zlib.crc32(self.key.encode())])
        return {k: np.asarray(v) for k, v in self.make(rng).items()}

    def tolerance(self, output: str) -> float:
        if isinstance(self.tol, Mapping):
            return self.tol.get(output, self.tol.get("*", 1e-7))
        return self.tol

    def describe(self, inputs: Arrays) -> str:
        """'x (2, 3, 7, 6), w (4, 3, 3, 2), stride 2, pad 1': shapes and settings, no values."""
        names = self.show if self.show is not None else [
            k for k, v in inputs.items() if v.ndim >= 1 and v.dtype.kind == "f"]
        parts = []
        for k in names:
            v = inputs[k]
            label = k.split(".", 1)[-1]
            if v.dtype.kind == "f" and v.ndim >= 1:
                parts.append(f"{label} {tuple(v.shape)}")
            elif v.ndim >= 1:
                parts.append(f"{label} {tuple(v.tolist())}")
            else:
                parts.append(f"{label} {v.item()!s}" if str(v.item()) else f"{label} none")
        return ", ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Recheck(Case):
    """A notebook check the grader re-runs outside the student's process (no points of its own):
    a notebook test cell names it in `metadata.cs231n.recheck` and keeps its points only if it
    passes. Compared with the reference's outputs when `verdict` is None, else judged by the
    verdict. Inputs named "held.*" stay with the grader. seconds: its wall clock in the worker.
    Made with `Recheck.named(name, probe, make, ...)`: task "recheck", points 0."""

    seconds: int

    @classmethod
    def named(cls, name: str, probe: str, make: Callable[[np.random.Generator], Mapping[str, Any]],
              **settings: Any) -> Recheck:
        return cls(task="recheck", name=name, points=0.0, probe=probe, make=make, **settings)

    def sent(self, inputs: Arrays) -> Arrays:
        """The inputs the worker gets: all but the held-out ones."""
        return {k: v for k, v in inputs.items() if not k.startswith("held.")}
