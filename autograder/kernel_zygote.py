"""Notebook kernels forked from a process that has imported what every notebook imports.

A fresh kernel spends about 2 s of CPU importing ipykernel, IPython, numpy, scipy, matplotlib
and, for the digits, sklearn and skimage, before the notebook's first line runs: 12 s for a
student's six notebooks, a third of what grading the whole assignment costs. In an isolated
nbgrader run (autograder/nbgrader_zygote.py), the nbgrader process starts one kernel zygote
before it reads any notebook: `python -m autograder.kernel_zygote SPEC`, with the kernels'
environment only, as root, in the run's namespaces. It imports PRELOAD once and listens on a unix
socket in the run's tmpfs that only root can reach. The launcher (kernel_sandbox.launch) asks it
for each kernel; the zygote forks a child that enters new network, PID and mount namespaces,
becomes the parent of process 1 there (which dies with it), and process 1 does what
`sandboxed_popen` and the sandbox launcher do (limits, mounts, user, no new privileges) and runs
ipykernel in-process, with the notebook's work folder first on sys.path.

What a kernel inherits is only what the zygote holds: the imported modules and the kernels'
environment; the zygote was exec'd with that environment only, so no hidden test, gradebook or
grader variable is in its memory.

    kernel_zygote.start(spec_file)            # in the run, before anything else
    pid = kernel_zygote.request_kernel(...)   # in the launcher: the kernel's parent (its pid)
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .config import ROOT
from .forked import forward_signals, read_line, redirect_output, run_and_leave, wait_for

PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "IPython", "numpy",
           "scipy.signal", "scipy.special", "matplotlib", "matplotlib.pyplot",
           "matplotlib_inline.backend_inline", "sklearn.datasets", "skimage.transform", "skimage.data")
SOCKET_NAME = "kernel-zygote.sock"
SOCKET_ENV = "CS231N_KERNEL_ZYGOTE"
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000


def start(spec_file):
    """Start the run's kernel zygote (the run's spec, see kernel_sandbox); returns the
    environment entry that tells launchers where it listens. The zygote lives as long as the
    run: it dies with the process that started it."""
    from .judge import sandbox as _sandbox
    from .kernel_sandbox import _kernel_env

    spec = json.loads(Path(spec_file).read_text())
    address = os.path.join(spec["shared"], SOCKET_NAME)
    mpl = os.path.join(spec["shared"], "mplconfig")
    os.makedirs(mpl, mode=0o755, exist_ok=True)
    env = {**_kernel_env("/tmp", spec), "MPLCONFIGDIR": mpl}
    libc_prctl = _sandbox._libc().prctl
    ready_r, ready_w = os.pipe()
    with open(os.path.join(spec["logs"], "kernel-zygote.log"), "ab") as log:
        # called before nbgrader starts any thread: preexec_fn is safe here
        subprocess.Popen([sys.executable, "-m", "autograder.kernel_zygote", str(spec_file), address, str(ready_w)],
                         cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=log, pass_fds=(ready_w,), close_fds=True,
                         preexec_fn=lambda: libc_prctl(_sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0))  # noqa: PLW1509
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        ok = ready.read(1) == b"1"
    return {SOCKET_ENV: address} if ok else {}


def request_kernel(address, request):
    """Ask the zygote at address for a kernel; returns the pid of the kernel's parent (signal it:
    SIGINT reaches the kernel, SIGKILL ends the kernel's namespace)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(address)
        conn.sendall(json.dumps(request).encode() + b"\n")
        answer = read_line(conn)
    reply = json.loads(answer or b"{}")
    if "pid" not in reply:
        raise RuntimeError(f"the kernel zygote did not start a kernel: {reply.get('error', 'no answer')}")
    return reply["pid"]


# --------------------------------------------------------------------------------------------
# The zygote's side
# --------------------------------------------------------------------------------------------
def _kernel(request, libc):
    """In process 1 of the kernel's namespaces: the sandbox, then ipykernel; never returns."""
    run_and_leave(lambda: _become_kernel(request, libc))


def _become_kernel(request, libc):
    import resource
    import tempfile

    from .judge import sandbox as _sandbox

    libc.prctl(_sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _sandbox._mount(libc, "proc", "/proc", "proc", _sandbox.MS_NOSUID | _sandbox.MS_NODEV | _sandbox.MS_NOEXEC)
    Path("/proc/self/oom_score_adj").write_text("1000")  # first in line for the OOM killer
    redirect_output(request["log"])
    os.closerange(3, 65536)
    for which, value in _sandbox.Limits(**request["limits"]).rlimits():
        resource.setrlimit(which, value)
    _sandbox.enter_sandbox(request["sandbox"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None
    sys.path[0] = request["sandbox"]["cwd"]
    sys.argv = ["ipykernel_launcher", *request["argv"]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=request["argv"])


def _parent(request, libc):
    """The forked child: new namespaces, then the parent of process 1 there; never returns."""
    from .judge import sandbox as _sandbox

    def become_parent():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        libc.prctl(_sandbox.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setsid()
        if libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET)")
        _sandbox._mount(libc, None, "/", None, _sandbox.MS_REC | _sandbox.MS_PRIVATE)
        child = os.fork()
        if child == 0:
            _kernel(request, libc)
        forward_signals(lambda _signum: [child])
        os._exit(os.waitstatus_to_exitcode(wait_for(child)) % 256)

    run_and_leave(become_parent)


def serve(spec_file, address, ready_fd):
    """The zygote: import PRELOAD, then one kernel per connection, until its parent dies."""
    import importlib

    from .judge import sandbox as _sandbox

    spec = json.loads(Path(spec_file).read_text())
    libc = _sandbox._libc()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as error:  # a kernel imports it itself, or fails as it would anyway
            print(f"kernel zygote: not preloaded: {name}: {error}", file=sys.stderr)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels' parents are reaped by the system
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    listener.bind(address)
    os.umask(old_umask)
    listener.listen(16)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                request = json.loads(read_line(conn))
                if request.get("uid") != spec["uid"]:
                    raise ValueError("a kernel for another run's user")
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    _parent(request, libc)
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except Exception as error:  # noqa: BLE001 - told to the launcher that asked
                conn.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
