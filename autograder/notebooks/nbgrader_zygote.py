"""`nbgrader autograde` runs forked from a process that imported nbgrader once (3 s saved per
student): each grading worker keeps a zygote, which forks one child per run; the child sets up
the run's kernel sandbox (run.enter_run), then is `python -m nbgrader ARGS`. Run as
`python -m autograder.notebooks.nbgrader_zygote PARENT_PID` this file is the zygote: one
RunRequest line in on stdin, one RunAnswer line out on stdout. docs/grading.md, "nbgrader runs"."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder.budget import TimeBudget
from autograder.config import ROOT, SECRET_ENV
from autograder.sandbox.bubblewrap import close_pipes
from autograder.sandbox.forked import die_with_parent, redirect_output, run_and_leave
from autograder.errors import RUN_NOT_SET_UP, ZygoteFailed
from autograder.notebooks.run import NbgraderRun, enter_run

PRELOAD = ("nbgrader.apps.nbgraderapp", "nbgrader.apps.autogradeapp", "nbgrader.converters",
           "nbgrader.preprocessors", "nbgrader.api", "nbclient", "jupyter_client.manager",
           "zmq.asyncio", "autograder.notebooks.run", "autograder.notebooks.bounded_execute",
           "autograder.notebooks.nbgrader_fixes")


@dataclass(frozen=True)
class RunRequest:
    """One run, from the worker to its zygote: nbgrader's args, its whole env, its folder (cwd),
    its log file, its time (timeout, seconds), the run's spec (run.RunSpec's file; None: no
    sandbox) and nbgrader's own cgroup folders (group)."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    log: str
    timeout: int
    run_spec: str | None = None
    group: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRequest:
        return cls(**data)


@dataclass(frozen=True)
class RunAnswer:
    """How the run ended: nbgrader's exit code (< 0: killed by that signal); timed_out, killed
    at its timeout."""

    returncode: int
    timed_out: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunAnswer:
        return cls(**data)


def _line(message: RunRequest | RunAnswer) -> bytes:
    return json.dumps(message.to_json()).encode() + b"\n"


class Zygote:
    """One zygote process (see the module docstring); runs one nbgrader at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.notebooks.nbgrader_zygote", str(os.getpid())], cwd=ROOT,
                                     env={k: v for k, v in os.environ.items() if k not in SECRET_ENV},
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True)
        self.owner = os.getpid()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def run(self, request: RunRequest, answer_within: int) -> RunAnswer:
        """Send one run; returns the zygote's answer, which must come within request.timeout +
        answer_within seconds (else ZygoteFailed)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both PIPE
        try:
            self.proc.stdin.write(_line(request))
            self.proc.stdin.flush()
        except OSError as error:
            self.close()
            raise ZygoteFailed(f"the nbgrader zygote is gone: {error}") from None
        ready, _, _ = select.select([self.proc.stdout], [], [], request.timeout + answer_within)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise ZygoteFailed("the nbgrader zygote died or did not answer"
                               f" within {request.timeout + answer_within} s")
        return RunAnswer.from_json(json.loads(line))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # its run child has a parent-death signal: it goes too
        self.proc.wait()
        close_pipes(self.proc)


_idle: list[Zygote] = []  # zygotes of this process not running anything
_idle_lock = threading.Lock()


def run_nbgrader(run: NbgraderRun, cwd: str | Path, log_path: str | Path, env: dict[str, str], *,
                 budget: TimeBudget, notebooks: int) -> tuple[int, bool]:
    """Run `nbgrader *run.args` as described by run in a fork of an idle zygote of this process
    (started on first use, reused afterwards).

    env: nbgrader's environment (run.env is added to it). Returns (returncode, timed_out); a run
    past budget.nbgrader_run(notebooks) seconds is killed with everything it started."""
    with _idle_lock:
        while _idle and not _idle[-1].alive():
            _idle.pop()
        zygote = _idle.pop() if _idle else None
    if zygote is None:
        zygote = Zygote()
    request = RunRequest(list(map(str, run.args)), {**env, **run.env}, str(cwd), str(log_path),
                         budget.nbgrader_run(notebooks), run.run_spec, run.group)
    answer = zygote.run(request, budget.zygote_answer)
    with _idle_lock:
        _idle.append(zygote)
    return answer.returncode, answer.timed_out


# --------------------------------------------------------------------------------------------
# The zygote's side
# --------------------------------------------------------------------------------------------
def _child(request: RunRequest) -> None:
    """In the forked child: become `python -m nbgrader ARGS`; never returns."""
    run_and_leave(lambda: _become_nbgrader(request))


def _become_nbgrader(request: RunRequest) -> None:
    from autograder.sandbox.cgroups import RunGroup

    RunGroup.attach(request.group).join()  # first: what it allocates is charged there
    die_with_parent()  # dies with the zygote
    os.setsid()
    redirect_output(request.log)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    import tempfile

    tempfile.tempdir = None  # TMPDIR changed: look again
    if request.run_spec:
        try:
            os.environ.update(enter_run(request.run_spec))  # before nbgrader reads anything
        except Exception:  # noqa: BLE001 - no student code has run: the grader's failure
            import traceback

            traceback.print_exc()  # into the run's log
            raise SystemExit(RUN_NOT_SET_UP) from None
    from nbgrader.apps.nbgraderapp import NbGraderApp

    sys.argv = ["nbgrader", *request.args]
    NbGraderApp.launch_instance(argv=request.args)


def _wait(pid: int, timeout: int) -> tuple[int | None, str]:
    """Wait for child pid, at most timeout seconds, or until our stdin closes; (status, why)."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd, sys.stdin.fileno()], [], [], timeout)
        if pidfd in ready:
            return os.waitpid(pid, 0)[1], ""
        return None, "stdin closed" if ready else "timeout"
    finally:
        os.close(pidfd)


def serve(parent: int) -> None:
    """The zygote's loop: one run per line of stdin, until stdin closes or its parent dies."""
    import importlib

    if not die_with_parent(parent):  # gone already
        return

    for name in PRELOAD:
        importlib.import_module(name)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = RunRequest.from_json(json.loads(line))
        pid = os.fork()
        if pid == 0:
            _child(request)
        status, why = _wait(pid, request.timeout)
        if status is None:  # killing the child ends its sandbox (--die-with-parent) and all inside it
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            status = os.waitpid(pid, 0)[1]
            if why == "stdin closed":
                return
        out.write(_line(RunAnswer(os.waitstatus_to_exitcode(status), why == "timeout")))
        out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
