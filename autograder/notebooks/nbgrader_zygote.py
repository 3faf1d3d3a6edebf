"""`nbgrader autograde` runs forked from a process that imported nbgrader once.

Importing nbgrader costs about 3 s of CPU (measured here: 3.2 s, 1.1 s of it jsonschema building
the grammar of its optional rfc3987 format checker), as much as grading a fast-mode notebook.
Started as `python -m nbgrader` once per student, that import was a third of a grading worker's
time. Instead, each grading worker keeps a zygote: a single-threaded Python process that has
imported nbgrader, nbclient, jupyter_client and the kernel sandbox, and forks one child per run.
The child is what `python -m nbgrader ARGS` was: its own session, its environment, its working
folder, stdout and stderr into a log file, stdin from /dev/null; before nbgrader reads anything
it sets up the student run's kernel sandbox (kernel_sandbox.enter_run: the run's tmpfs and the
kernel zygote in bubblewrap).

    with kernel_sandbox.sandboxed_nbgrader(["autograde", "a2", ...], run_dir, ...) as run:
    returncode = run_nbgrader(run, cwd=ROOT, log_path=..., timeout=1800, env=os.environ)

The zygote is a fork of nothing but itself, so nothing a grading worker does (threads of a Dask
worker, open gradebooks, the judge) is inherited by nbgrader. The child dies with the zygote and
the zygote with the worker (parent-death signals; the zygote also exits when its stdin closes),
and the run's sandbox with the child (bwrap's --die-with-parent).

Run as `python -m autograder.notebooks.nbgrader_zygote` this file is the zygote. Protocol: one JSON line
per run on stdin ({"args", "env", "cwd", "log", "timeout", "run_spec", "group"}), one JSON line back
on stdout when the run ended ({"returncode", "timed_out"}).
"""
import json
import os
import select
import signal
import subprocess
import sys
import threading

from autograder.config import ROOT, SECRET_ENV
from autograder.sandbox.forked import die_with_parent, redirect_output, run_and_leave
from autograder.errors import ZygoteFailed

PRELOAD = ("nbgrader.apps.nbgraderapp", "nbgrader.apps.autogradeapp", "nbgrader.converters",
           "nbgrader.preprocessors", "nbgrader.api", "nbclient", "jupyter_client.manager",
           "zmq.asyncio", "autograder.notebooks.kernel_sandbox", "autograder.notebooks.nbgrader_fixes")
ANSWER_GRACE = 60  # seconds the zygote may take beyond a run's timeout to answer


class Zygote:
    """One zygote process (see the module docstring); runs one nbgrader at a time."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.notebooks.nbgrader_zygote", str(os.getpid())], cwd=ROOT,
                                     env={k: v for k, v in os.environ.items() if k not in SECRET_ENV},
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True)
        self.owner = os.getpid()

    def alive(self):
        return self.owner == os.getpid() and self.proc.poll() is None

    def run(self, request):
        """Send one run; returns the zygote's answer {"returncode", "timed_out"}."""
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as error:
            self.close()
            raise ZygoteFailed(f"the nbgrader zygote is gone: {error}") from None
        ready, _, _ = select.select([self.proc.stdout], [], [], request["timeout"] + ANSWER_GRACE)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise ZygoteFailed("the nbgrader zygote died or did not answer"
                               f" within {request['timeout'] + ANSWER_GRACE} s")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # its run child has a parent-death signal: it goes too
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


_idle = []  # zygotes of this process not running anything
_idle_lock = threading.Lock()


def run_nbgrader(run, cwd, log_path, timeout, env):
    """Run `nbgrader *run.args` as described by run (a kernel_sandbox.NbgraderRun) in a fork of
    an idle zygote of this process (started on first use, reused afterwards).

    env: nbgrader's environment (run.env is added to it). Returns (returncode, timed_out); a run
    past `timeout` seconds is killed with everything it started."""
    with _idle_lock:
        while _idle and not _idle[-1].alive():
            _idle.pop()
        zygote = _idle.pop() if _idle else None
    if zygote is None:
        zygote = Zygote()
    answer = zygote.run({"args": list(map(str, run.args)), "env": {**env, **run.env}, "cwd": str(cwd),
                         "log": str(log_path), "timeout": timeout, "run_spec": run.run_spec,
                         "group": run.group})
    with _idle_lock:
        _idle.append(zygote)
    return answer["returncode"], answer["timed_out"]


# --------------------------------------------------------------------------------------------
# The zygote's side
# --------------------------------------------------------------------------------------------
def _child(request):
    """In the forked child: become `python -m nbgrader ARGS`; never returns."""
    run_and_leave(lambda: _become_nbgrader(request))


def _become_nbgrader(request):
    from autograder.sandbox.cgroups import RunGroup

    RunGroup.attach(request.get("group", [])).join()  # first: what it allocates is charged there
    die_with_parent()  # dies with the zygote
    os.setsid()
    redirect_output(request["log"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    import tempfile

    tempfile.tempdir = None  # TMPDIR changed: look again
    if request["run_spec"]:
        from autograder.notebooks.kernel_sandbox import enter_run

        os.environ.update(enter_run(request["run_spec"]))  # before nbgrader reads anything
    from nbgrader.apps.nbgraderapp import NbGraderApp

    sys.argv = ["nbgrader", *request["args"]]
    NbGraderApp.launch_instance(argv=request["args"])


def _wait(pid, timeout):
    """Wait for child pid, at most timeout seconds, or until our stdin closes; (status, why)."""
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd, sys.stdin.fileno()], [], [], timeout)
        if pidfd in ready:
            return os.waitpid(pid, 0)[1], ""
        return None, "stdin closed" if ready else "timeout"
    finally:
        os.close(pidfd)


def serve(parent):
    """The zygote's loop: one run per line of stdin, until stdin closes or its parent dies."""
    import importlib

    if not die_with_parent(parent):  # gone already
        return

    for name in PRELOAD:
        importlib.import_module(name)
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        status, why = _wait(pid, request["timeout"])
        if status is None:  # killing the child ends its sandbox (--die-with-parent) and all inside it
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            status = os.waitpid(pid, 0)[1]
            if why == "stdin closed":
                return
        answer = {"returncode": os.waitstatus_to_exitcode(status), "timed_out": why == "timeout"}
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
