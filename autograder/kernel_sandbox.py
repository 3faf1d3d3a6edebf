"""Notebook kernels for grading, run in the judge's sandbox (autograder/judge/sandbox.py).

nbgrader itself (trusted: it holds the gradebook and the hidden tests) runs as the grader; only
the KERNEL that executes the student's notebook is untrusted, so only the kernel is sandboxed:

    with sandboxed_nbgrader(["autograde", ...], run_dir, hide=[...]) as run:
        nbgrader_zygote.run_nbgrader(run, cwd, log_path, timeout)

What a graded notebook's kernel gets (as root, the grader here and in CI):
- the kernelspec `cs231n-sandboxed` (autograder/kernels/, found through JUPYTER_PATH and chosen
  with --Execute.kernel_name) starts this file as the launcher, as root, in the notebook's
  autograded folder;
- the launcher copies that folder, without notebooks (they hold the hidden tests), links or
  oversized files, into a fresh work folder, and starts `python -m ipykernel_launcher` there with
  sandboxed_popen: an unprivileged user of its own (a numeric uid chosen per nbgrader run, so
  that RLIMIT_NPROC counts this run's processes only and a fork bomb cannot starve other
  students' kernels or the judge), first in line for the OOM killer, CPU/memory/process/
  file-size/descriptor limits, a network namespace without network, a PID namespace, fresh
  /tmp, and the repository, the course folder, the source notebooks, the private course and
  gradebook and every other folder the caller names covered by empty read-only mounts, and /run
  too (unix sockets in the file system do not care about network namespaces). In an nbgrader
  run started by autograder/nbgrader_zygote.py, the launcher asks the run's kernel zygote
  (autograder/kernel_zygote.py) for the kernel instead: the same sandbox, entered by a fork of
  a process that has already imported ipykernel, numpy, matplotlib and the rest;
- the kernel talks to nbclient over jupyter_client's `ipc` transport (unix sockets: TCP on
  127.0.0.1 cannot cross network namespaces), in a runtime folder owned by the kernel's user;
- interrupts (SIGINT) are forwarded to the kernel; SIGTERM, or the death of the launcher (even by
  SIGKILL, through a watchdog), kills the whole sandbox.
- nbgrader runs in a mount and PID namespace of its own (`enter_run_namespaces`, called by
  autograder/nbgrader_zygote.py in the process that becomes nbgrader): the runtime and
  work folders are a small tmpfs (on KERNELS_MOUNT, a short path for the sockets) that exists
  only for that run, so a kernel can fill neither the disk nor the grader's folders, and
  whatever a kernel leaves running dies with the run.
- the kernel's own stdout/stderr (fd 1 and 2, not the notebook's outputs) go to a log file in the
  run folder, bounded by RLIMIT_FSIZE; the notebook's outputs are capped per cell by
  BoundedExecute, the Execute preprocessor nbgrader uses for grading here, and no single ZMQ
  message from the kernel may exceed MAX_MESSAGE_BYTES.
Not root: the kernel still runs through sandboxed_popen, with the limits only (it warns once).

Run as a script this file is the launcher (`kernel_sandbox.py -f CONNECTION_FILE ...`).
"""
import ctypes
import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__":  # started by path (the kernelspec): import the project, not this folder
    _root = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [_root] + [p for p in sys.path[1:] if p != _root]

from autograder import kernel_zygote
from autograder.forked import forward_signals, wait_for
from autograder.judge import sandbox as _sandbox

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERNEL_NAME = "cs231n-sandboxed"
JUPYTER_PATH = HERE  # holds kernels/cs231n-sandboxed/kernel.json
SPEC_ENV = "CS231N_KERNEL_SANDBOX"  # the launcher's instructions: a JSON file written by the grader
UID_BASE = 1_900_000_000  # kernel users: UID_BASE + the grading worker's pid (no passwd entry)
MAX_MESSAGE_BYTES = 64 << 20  # largest ZMQ message nbclient accepts from a kernel
MAX_QUEUED_MESSAGES = 16  # per socket, in nbgrader's process (ZMQ_RCVHWM): at most 1 GB queued
MAX_CELL_OUTPUT_BYTES = 2 << 20  # outputs kept per cell; the rest is replaced by one line
MAX_COPY_BYTES = 64 << 20  # of the notebook folder into the kernel's work folder
KERNELS_MOUNT = "/run/cs231n-kernels" if os.path.isdir("/run") else "/tmp/cs231n-kernels"
RUN_TMPFS_MB = 512  # the tmpfs of one nbgrader run: runtime folder and kernel work folders
# The instructor's tree, and /run: unix sockets in the file system (a database's, say) are
# reachable from any network namespace.
ALWAYS_HIDDEN = tuple(p for p in (str(ROOT), "/run") if os.path.isdir(p))
KERNEL_LIMITS = {"cpu_seconds": 3600, "memory_mb": 4096, "nproc": 128, "fsize_mb": 64,
                 "nofile": 1024, "tmpfs_mb": 128}
ENV_PASSED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CS231N_DATASET", "CS231N_FAST", "MPLBACKEND")


# --------------------------------------------------------------------------------------------
# The grader's side: the command that runs nbgrader with sandboxed kernels
# --------------------------------------------------------------------------------------------
def isolated():
    return _sandbox.isolation_available()


def run_user(token=None):
    """(uid, gid) of the kernels of one nbgrader run: unique among the runs on this machine."""
    number = UID_BASE + (os.getpid() if token is None else token)
    return number, number


@dataclass
class NbgraderRun:
    """How to run nbgrader with every kernel in the sandbox.

    args: nbgrader's command line after `nbgrader` (the caller's, plus the kernel's settings).
    env: variables to add to nbgrader's environment.
    namespace_spec: the spec file for enter_run_namespaces, which the process that becomes
    nbgrader must call first (None without isolation).
    """

    args: list
    env: dict = field(default_factory=dict)
    namespace_spec: str = None


@contextmanager
def sandboxed_nbgrader(nbgrader_args, run_dir, *, hide=(), expose=(), limits=None, env=None,
                       isolate=None, uid=None):
    """Yields the NbgraderRun that runs `nbgrader *nbgrader_args` with every kernel in the sandbox.

    run_dir: an empty folder of the grader's (not readable by others) for this run: the spec
    and the kernel logs. hide: folders no kernel may see (the repository is always added).
    expose: read-only folders the kernels need beyond the interpreter and their work folder.
    limits: Limits fields overriding KERNEL_LIMITS. env: variables the kernels get (on top of a
    minimal PATH/HOME/LANG and ENV_PASSED). isolate: as in sandboxed_popen (None: where root).
    """
    run_dir = Path(run_dir).resolve()
    isolate = isolated() if isolate is None else isolate
    uid, gid = (uid if uid is not None else run_user()) if isolate else (os.getuid(), os.getgid())
    # The runtime folder holds the kernels' unix sockets, whose paths must stay under ~100
    # bytes: with isolation, a fixed short path on which each run mounts a tmpfs of its own in
    # its own mount namespace; without, a short temporary folder.
    shared = Path(KERNELS_MOUNT) if isolate else Path(tempfile.mkdtemp(prefix="cs231n-k-"))
    spec = {"hide": sorted({*ALWAYS_HIDDEN, *(str(Path(p).resolve()) for p in hide)}),
            "expose": [str(Path(p).resolve()) for p in expose],
            "limits": {**KERNEL_LIMITS, **(limits or {})}, "env": dict(env or {}),
            "isolate": isolate, "uid": uid, "gid": gid, "shared": str(shared),
            "logs": str(run_dir / "logs")}
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    spec_file = run_dir / "kernel-sandbox.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    # a lone KernelManager writes its connection file with mkstemp (so in TMPDIR), and its ipc
    # sockets at `ip`-N, a path relative to each process's folder unless given
    runtime = str(shared / "runtime")
    args = [*nbgrader_args, f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
            f"--KernelManager.ip={runtime}/kernel-ipc"]
    extra_env = {"JUPYTER_PATH": str(JUPYTER_PATH), "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime,
                 SPEC_ENV: str(spec_file)}
    if not isolate:
        (shared / "runtime").mkdir()
    try:
        yield NbgraderRun(args, extra_env, str(spec_file) if isolate else None)
    finally:
        if not isolate:
            shutil.rmtree(shared, ignore_errors=True)


CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000


def enter_run_namespaces(spec_file):
    """Make the calling process (root, single-threaded) into process 1 of a new PID namespace
    with a private mount namespace, a /proc of its own and the run's tmpfs on the spec's shared
    folder, owned as the kernels need it. Returns in that process; the caller's original
    process waits for it and exits with its status (it never returns). Whatever the run leaves
    behind dies with process 1, which dies with its parent (parent-death signal)."""
    spec = json.loads(Path(spec_file).read_text())
    libc = _sandbox._libc()
    if libc.unshare(CLONE_NEWNS | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS | CLONE_NEWPID)")
    _sandbox._mount(libc, None, "/", None, _sandbox.MS_REC | _sandbox.MS_PRIVATE)
    child = os.fork()
    if child:  # the original process: outside the new PID namespace, waits for process 1
        os._exit(os.waitstatus_to_exitcode(wait_for(child)) % 256)
    libc.prctl(_sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _sandbox._mount(libc, "proc", "/proc", "proc", _sandbox.MS_NOSUID | _sandbox.MS_NODEV | _sandbox.MS_NOEXEC)
    shared = spec["shared"]
    os.makedirs(shared, mode=0o755, exist_ok=True)  # on the machine: an empty mount point
    _sandbox._mount(libc, "tmpfs", shared, "tmpfs", _sandbox.MS_NOSUID | _sandbox.MS_NODEV,
                    f"size={RUN_TMPFS_MB}m,mode=0711")
    runtime = os.path.join(shared, "runtime")
    os.mkdir(runtime, 0o700)
    os.chown(runtime, spec["uid"], spec["gid"])


# --------------------------------------------------------------------------------------------
# The launcher: started by jupyter_client (as the grader) for each notebook
# --------------------------------------------------------------------------------------------
def _copy_workdir(src, dest, limit=MAX_COPY_BYTES):
    """Copy the notebook folder for the kernel: no notebooks, links, checkpoints or caches."""
    budget = limit
    for folder, dirs, files in os.walk(src):
        rel = os.path.relpath(folder, src)
        dirs[:] = sorted(d for d in dirs if d not in (".ipynb_checkpoints", "__pycache__")
                         and not os.path.islink(os.path.join(folder, d)))
        target = dest if rel == "." else os.path.join(dest, rel)
        os.makedirs(target, exist_ok=True)
        for name in sorted(files):
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if name.endswith(".ipynb") or not stat.S_ISREG(info.st_mode) or info.st_size > budget:
                continue
            budget -= info.st_size
            shutil.copyfile(path, os.path.join(target, name), follow_symlinks=False)


def _chown_tree(top, uid, gid):
    for folder, dirs, files in os.walk(top):
        os.chown(folder, uid, gid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _kernel_env(work, spec):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
           "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student",
           "IPYTHONDIR": "/tmp/.ipython", "MPLCONFIGDIR": "/tmp/.matplotlib",
           "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime", "PYTHONDONTWRITEBYTECODE": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    env.update(spec.get("env", {}))
    return env


def _site_packages():
    """The folder numpy is installed in (found without importing it: the launcher starts fast)."""
    from importlib.util import find_spec

    return str(Path(find_spec("numpy").origin).resolve().parent.parent)


WATCHDOG = """import os, signal, sys
sys.stdin.buffer.read()
try:
    os.killpg(int(sys.argv[1]), signal.SIGKILL)
except OSError:
    pass
"""


def _watchdog(pid):
    """A process outside our process group that kills group `pid` once we are gone."""
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHDOG, str(pid)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def _kernel_pids(proc):
    """The kernel: the child of `unshare` (or the process itself without isolation)."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        children = []
    return [int(c) for c in children] or [proc.pid]


def launch(args):
    """Start the sandboxed kernel for `-f CONNECTION_FILE [extra kernel args]`; returns its code."""
    if len(args) < 2 or args[0] != "-f":
        print("usage: kernel_sandbox.py -f CONNECTION_FILE [kernel arguments]", file=sys.stderr)
        return 2
    connection_file, extra = os.path.abspath(args[1]), list(args[2:])
    spec_file = os.environ.get(SPEC_ENV)
    if spec_file:
        spec = json.loads(Path(spec_file).read_text())
    else:  # chosen by hand (e.g. in JupyterLab): hide the instructor's tree, defaults otherwise
        spec = {"hide": list(ALWAYS_HIDDEN), "expose": [], "limits": KERNEL_LIMITS, "env": {}, "isolate": None}
    isolate = spec.get("isolate")
    isolate = isolated() if isolate is None else isolate
    if isolate and spec.get("uid") is not None:
        # the kernels of this run get a user of their own (see the module docstring); sandbox.py
        # reads it from here
        _sandbox._user = (spec["uid"], spec["gid"])
    uid, gid = _sandbox.sandbox_user() if isolate else (os.getuid(), os.getgid())
    try:
        notebook_dir = os.getcwd()
    except FileNotFoundError:
        print("kernel_sandbox: the notebook's folder is gone", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="work-", dir=spec.get("shared") or tempfile.gettempdir())
    _copy_workdir(notebook_dir, work)
    runtime = os.path.dirname(connection_file)
    if isolate:
        _chown_tree(work, uid, gid)
        os.chown(connection_file, uid, gid)
    try:  # inherited by the kernel and all it starts: the first the OOM killer takes
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    if "--HistoryManager.hist_file=:memory:" not in extra:
        extra.append("--HistoryManager.hist_file=:memory:")
    limits = _sandbox.Limits(**spec.get("limits", KERNEL_LIMITS))
    logs = spec.get("logs")
    log_path = os.path.join(logs, f"kernel-{os.getpid()}.log") if logs else os.devnull
    hide, expose = spec.get("hide", []), [runtime, _site_packages(), *spec.get("expose", [])]
    zygote = os.environ.get(kernel_zygote.SOCKET_ENV)
    if isolate and zygote:
        try:
            return _launch_forked(zygote, {
                "uid": uid, "sandbox": _sandbox.launch_spec(work, limits, uid, gid, hide=hide, expose=expose),
                "env": _kernel_env(work, spec), "argv": ["-f", connection_file, *extra], "log": log_path,
                "limits": dataclasses.asdict(limits)})
        finally:
            shutil.rmtree(work, ignore_errors=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file, *extra]
    with open(log_path, "ab") as log:
        proc = _sandbox.sandboxed_popen(
            argv, work, limits, env=_kernel_env(work, spec), hide=hide, expose=expose, isolate=isolate,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    watchdog = _watchdog(proc.pid)
    forward_signals(lambda signum: _kernel_pids(proc) if signum == signal.SIGINT else [-proc.pid])
    try:
        code = proc.wait()
    finally:
        _sandbox.kill_tree(proc)
        watchdog.stdin.close()
        watchdog.wait()
        shutil.rmtree(work, ignore_errors=True)
    return code


def _launch_forked(address, request):
    """The kernel from the run's kernel zygote (autograder/kernel_zygote.py): the same sandbox,
    without importing ipykernel, numpy and the rest again; returns when the kernel is gone."""
    import select

    pid = kernel_zygote.request_kernel(address, request)
    pidfd = os.pidfd_open(pid)
    watchdog = _watchdog(pid)  # the kernel's parent leads its own process group
    forward_signals(lambda _signum: [pid])
    try:
        while not select.select([pidfd], [], [])[0]:
            pass
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.close(pidfd)
        watchdog.stdin.close()
        watchdog.wait()
    return 0


# --------------------------------------------------------------------------------------------
# nbgrader's side: the Execute preprocessor that bounds what a kernel can make it hold
# --------------------------------------------------------------------------------------------
def preprocessor_args():
    """nbgrader arguments that run the autograde preprocessors with BoundedExecute."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    names = [f"{__name__ if __name__ != '__main__' else 'autograder.kernel_sandbox'}.BoundedExecute"
             if cls is Execute else f"{cls.__module__}.{cls.__name__}"
             for cls in Autograde.class_traits()["autograde_preprocessors"].default()]
    return [f"--Autograde.autograde_preprocessors={name}" for name in names]


def _message_bytes(content):
    if isinstance(content.get("text"), str) and len(content) <= 3:  # stream: name, text
        return len(content["text"])
    return len(json.dumps(content, default=str))


def _bounded_execute():
    import zmq
    import zmq.asyncio
    from jupyter_client.manager import AsyncKernelManager
    from nbformat.v4 import new_output
    from nbgrader.preprocessors import Execute
    from traitlets import Integer, default

    def bounded_context():
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # defaults of its new sockets
        context.setsockopt(zmq.RCVHWM, MAX_QUEUED_MESSAGES)
        return context

    class BoundedKernelManager(AsyncKernelManager):
        """Every socket talking to the kernel refuses messages over MAX_MESSAGE_BYTES."""

        @default("context")
        def _bounded_context_default(self):
            self._created_context = True
            return bounded_context()

        def client(self, **kwargs):
            kwargs.setdefault("context", bounded_context())
            kc = super().client(**kwargs)
            kc._created_context = True
            return kc

    class BoundedExecute(Execute):
        """nbgrader's Execute, keeping at most max_cell_output_bytes of each cell's outputs.

        Error outputs are always kept (they decide a test cell's score), with their text cut."""

        max_cell_output_bytes = Integer(MAX_CELL_OUTPUT_BYTES, config=True,
                                        help="Outputs kept per cell; errors always kept.")

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", BoundedKernelManager)
            super().__init__(*args, **kwargs)
            self._output_bytes = {}

        def process_message(self, msg, cell, cell_index):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                content["evalue"] = str(content.get("evalue", ""))[:4000]
                content["traceback"] = [str(line)[:4000] for line in content.get("traceback", [])[-50:]]
            elif kind not in ("status", "execute_input"):
                used, limit = self._output_bytes.get(cell_index, 0), self.max_cell_output_bytes
                if used > limit:  # cut already: drop without looking
                    return None
                size = _message_bytes(content)
                if used + size > limit:
                    if used <= limit:  # the first message over the limit: say so, once
                        cell.outputs.append(new_output(
                            "stream", name="stderr", text=f"\n[output cut: more than {limit} bytes]\n"))
                    self._output_bytes[cell_index] = limit + 1
                    return None
                self._output_bytes[cell_index] = used + size
            return super().process_message(msg, cell, cell_index)

    return BoundedExecute


def __getattr__(name):  # BoundedExecute is built on first use: the launcher never imports nbgrader
    if name == "BoundedExecute":
        globals()[name] = _bounded_execute()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(args):
    return launch(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
