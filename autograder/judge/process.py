"""One judge worker process on a prepared folder (folder.prepare): started, asked one wire.Request
per case, stopped; in a bubblewrap Sandbox for a submission, with limits only for our reference."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from autograder.budget import TimeBudget
from autograder.errors import JudgeError
from autograder.judge import wire
from autograder.sandbox import bubblewrap as _sandbox

MODULES = ("layers", "optim", "classifiers", "arch", "solver")  # imported by the worker at start
ENV_PASSED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # needed on some CPUs, see the env notes
WORKER_MEMORY_MB = 2048  # a judge worker's address space, unless judge_package is told otherwise


class CaseTimeout(Exception):
    """The worker did not answer within its time."""


class WorkerGone(Exception):
    """The worker died or broke the protocol; the message says how."""


class ImportBroken(Exception):
    """The worker died or hung while importing the package."""


def limits(budget: TimeBudget, memory_mb: int) -> _sandbox.Limits:
    """A worker's rlimits: CPU for all its cases and one more, memory_mb of address space."""
    return _sandbox.Limits(cpu_seconds=budget.judge_total + budget.judge_case + 5, memory_mb=int(memory_mb))


def worker_env(home: str | Path) -> dict[str, str]:
    """The worker's whole environment: a minimal one, one thread per BLAS."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "TMPDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    return env


class Worker:
    """One worker process on one prepared folder w; start() then ask() once per case.

    box: the Sandbox it runs in (group: its run's RunGroup), or None for our own reference
    package, which runs with the limits only. boot_seconds: its own start-up, before any
    submitted code runs."""

    def __init__(self, w: Path, limits: _sandbox.Limits, box: _sandbox.Sandbox | None,
                 stderr_path: Path, boot_seconds: float, group: _sandbox.RunGroup | None = None) -> None:
        self.w, self.limits, self.box, self.group = w, limits, box, group
        self.stderr_path, self.boot_seconds = stderr_path, boot_seconds
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = self.inp = -1

    def start(self, import_timeout: float) -> None:
        """Start the worker; JudgeError if it does not boot, ImportBroken if its import fails."""
        argv = [os.path.realpath(sys.executable), "-I", "-S", str(self.w / "judge" / "worker.py"),
                str(self.w / "pkg"), _sandbox.site_packages(), *MODULES]
        with open(self.stderr_path, "wb") as stderr:
            if self.box is None:
                self.proc = _sandbox.trusted_popen(argv, self.w, self.limits, env=worker_env(self.w),
                                                   stderr=stderr, stdin=subprocess.PIPE,
                                                   stdout=subprocess.PIPE)
            else:
                self.proc = _sandbox.sandboxed_popen(argv, self.box, group=self.group,
                                                     env=worker_env("/tmp"), stderr=stderr,
                                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.out, self.inp = _fileno(self.proc.stdout), _fileno(self.proc.stdin)
        os.set_blocking(self.inp, False)
        try:
            self._expect("booted", time.monotonic() + self.boot_seconds)
        except (WorkerGone, CaseTimeout) as exc:
            self.stop()
            raise JudgeError(f"the judge's worker did not start ({exc}): "
                             f"{self._stderr_tail()}") from None
        try:
            self._expect("ready", time.monotonic() + import_timeout)
        except CaseTimeout:
            self.stop()
            raise ImportBroken(f"importing it took longer than {import_timeout:g} s") from None
        except WorkerGone as exc:
            raise ImportBroken(f"the process importing it {exc}") from None

    def _expect(self, status: str, deadline: float) -> None:
        reply = self._read(deadline, 1 << 16)
        if reply.status != status:
            raise WorkerGone(f"sent {reply.status!r} instead of {status!r}")

    def _read(self, deadline: float, max_bytes: int) -> wire.Reply:
        try:
            return wire.Reply.from_untrusted(wire.read_message(self.out, deadline, max_bytes), max_bytes)
        except wire.Timeout:
            raise CaseTimeout() from None
        except wire.Closed:
            raise WorkerGone(self._exit()) from None
        except wire.ChannelError as exc:
            self.stop()
            raise WorkerGone(f"sent a reply the grader cannot read: {exc}") from None

    def _exit(self) -> str:
        assert self.proc is not None
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.stop()
            return "closed its output"
        code = self.proc.returncode
        self.stop()
        if code == 137 or code == -9:
            return ("was killed (SIGKILL: out of memory or a limit)")
        return _sandbox.describe_exit(code)

    def ask(self, request: wire.Request, timeout: float, max_bytes: int) -> wire.Reply:
        """The worker's reply to one request; raises CaseTimeout or WorkerGone."""
        deadline = time.monotonic() + timeout
        try:
            wire.write_message(self.inp, request.encode(), deadline)
        except wire.Timeout:
            raise CaseTimeout() from None
        except wire.Closed:
            raise WorkerGone(self._exit()) from None
        return self._read(deadline, max_bytes)

    def stop(self) -> None:
        if self.proc is not None:
            _sandbox.kill_tree(self.proc)
            _sandbox.close_pipes(self.proc)

    def _stderr_tail(self) -> str:
        try:
            return Path(self.stderr_path).read_bytes()[-1500:].decode(errors="replace").strip()
        except OSError:
            return ""


def _fileno(stream: IO[bytes] | None) -> int:
    assert stream is not None, "the worker was started with pipes"
    return stream.fileno()
