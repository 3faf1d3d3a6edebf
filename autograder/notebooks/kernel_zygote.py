"""Notebook kernels forked from a process, inside the student run's sandbox, that has imported
what every notebook imports.

A fresh kernel spends about 2 s of CPU importing ipykernel, IPython, numpy, scipy, matplotlib
and, for the digits, sklearn and skimage, before the notebook's first line runs. Each nbgrader
run therefore starts one kernel zygote inside the run's bubblewrap sandbox
(autograder.notebooks.kernel_sandbox.enter_run), before nbgrader reads any notebook and with the kernels'
environment only, so no hidden test, gradebook or grader variable is in its memory. It imports
PRELOAD once and listens on a unix socket in the run's shared folder; the kernel launcher
(kernel_sandbox.launch, outside the sandbox) asks it for each kernel with request_kernel.

    conn, pidfd = request_kernel(address, {"cwd", "env", "argv"}, log_fd)

The zygote forks the kernel (in the same sandbox: same root, namespaces, uid and limits), which
runs ipykernel in-process with its work folder first on sys.path, and answers with a pidfd of it:
the launcher signals the kernel through that (SIGINT interrupts it) and learns when it ends. When
the launcher's connection closes (it ended or was killed) or the kernel ends, the zygote kills
every other process of the sandbox (kill(-1): all but itself and the sandbox's init), so nothing
a notebook started runs on into the next: nbgrader runs a student's notebooks one at a time.
Only processes outside the sandbox may ask for kernels.

This file runs inside the sandbox by path (`python -I -S kernel_zygote.py SITE_PACKAGES SOCKET
READY_FD`), copied with forked.py into the run's shared folder: it imports the standard library,
forked.py and the notebooks' packages only.
"""
import json
import os
import selectors
import signal
import socket
import struct
import sys

if __name__ == "__main__":  # run by path in the sandbox: forked.py lies next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from forked import read_line, redirect_fds, run_and_leave
else:
    from autograder.sandbox.forked import read_line, redirect_fds, run_and_leave

PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "IPython", "numpy",
           "scipy.signal", "scipy.special", "matplotlib", "matplotlib.pyplot",
           "matplotlib_inline.backend_inline", "sklearn.datasets", "skimage.transform", "skimage.data")
SOCKET_NAME = "kernel-zygote.sock"
SOCKET_ENV = "CS231N_KERNEL_ZYGOTE"
MAX_REQUEST = 1 << 20


def request_kernel(address, request, log_fd):
    """Ask the zygote at address for a kernel: request {"cwd", "env", "argv"}, its stdout and
    stderr going to log_fd. Returns (connection, pidfd of the kernel); the kernel lives until it
    ends or the connection closes."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(address)
    socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [log_fd])
    answer, fds, _, _ = socket.recv_fds(conn, 65536, 1)
    reply = json.loads(answer or b"{}")
    if "pid" not in reply or not fds:
        conn.close()
        raise RuntimeError(f"the kernel zygote did not start a kernel: {reply.get('error', 'no answer')}")
    conn.settimeout(None)
    return conn, fds[0]


# --------------------------------------------------------------------------------------------
# The zygote's side, in the sandbox
# --------------------------------------------------------------------------------------------
def _become_kernel(request, log_fd):
    """In the forked child: ipykernel in this process; never returns."""
    import tempfile

    os.setsid()  # its own session: the zygote kills it with whatever it started there
    redirect_fds(log_fd)
    os.closerange(3, 65536)  # its OOM priority (1000) it has from the grader, through the zygote
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None
    sys.path[0] = request["cwd"]
    sys.argv = ["ipykernel_launcher", *request["argv"]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=request["argv"])


def _start_kernel(conn, listener, others):
    """Read one request from conn and fork its kernel; returns (pid, pidfd)."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 1)
    if not data.endswith(b"\n"):
        data += read_line(conn, MAX_REQUEST)
    if len(fds) != 1:
        raise ValueError("a request comes with the kernel's log file")
    request = json.loads(data)
    pid = os.fork()
    if pid == 0:
        for sock in (listener, conn, *others):
            sock.close()
        run_and_leave(lambda: _become_kernel(request, fds[0]))
    os.close(fds[0])
    return pid, os.pidfd_open(pid)


def _kill_all_but_me(pid, alone):
    """End the kernel pid and, if no other kernel runs (alone), every process of the sandbox but
    the zygote and the sandbox's init; else only the kernel's session."""
    kills = ((os.kill, -1),) if alone else ((os.killpg, pid), (os.kill, pid))
    for kill, target in kills:
        try:
            kill(target, signal.SIGKILL)
        except OSError:
            pass


def _from_outside(conn):
    """True if conn's peer is outside the sandbox: its pid is not in the zygote's PID namespace
    (SO_PEERCRED gives 0). A process of the sandbox may not ask for kernels of its own."""
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid == 0


def serve(address, ready_fd):
    """The zygote: import PRELOAD, then one kernel per connection, until the sandbox ends."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as error:  # a kernel imports it itself, or fails as it would anyway
            print(f"kernel zygote: not preloaded: {name}: {error}", file=sys.stderr)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    listener.bind(address)
    os.umask(old_umask)
    listener.listen(16)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    kernels = {}  # connection -> (pid, pidfd)
    while True:
        # kernels that ended before new ones start: the kill of what they left spares a new one
        for key, _ in sorted(selector.select(), key=lambda event: event[0].data is None):
            if key.data is None:  # a launcher asks for a kernel
                conn, _ = listener.accept()
                if not _from_outside(conn):
                    conn.close()
                    continue
                try:
                    pid, pidfd = _start_kernel(conn, listener, kernels)
                except Exception as error:  # noqa: BLE001 - told to the launcher that asked
                    conn.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")
                    conn.close()
                    continue
                socket.send_fds(conn, [json.dumps({"pid": pid}).encode() + b"\n"], [pidfd])
                kernels[conn] = (pid, pidfd)
                selector.register(conn, selectors.EVENT_READ, ("launcher", conn))
                selector.register(pidfd, selectors.EVENT_READ, ("kernel", conn))
                continue
            _, conn = key.data
            if conn not in kernels:
                continue
            pid, pidfd = kernels.pop(conn)
            # the launcher is gone (or spoke out of turn), or the kernel ended: end it and all it left
            _kill_all_but_me(pid, alone=not kernels)
            os.waitpid(pid, 0)
            selector.unregister(conn)
            selector.unregister(pidfd)
            conn.close()
            os.close(pidfd)


if __name__ == "__main__":
    sys.path.append(sys.argv[1])  # the venv's site-packages (-S left it out)
    serve(sys.argv[2], int(sys.argv[3]))
