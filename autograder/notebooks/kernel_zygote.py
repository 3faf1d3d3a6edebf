"""The kernel zygote: inside a student run's sandbox, a process that imported what the assignment's
notebooks import (autograder.notebooks.preload; 2 s per kernel saved) and forks one kernel per
launcher's KernelRequest, answering with a KernelReply and the kernel's pidfd; when the launcher
goes or the kernel ends, it kills all the kernel left. Runs by path in the sandbox
(`python -I -S kernel_zygote.py SITE_PACKAGES SOCKET READY_FD MODULE...`), beside forked.py:
standard library only. docs/isolation.md, "Notebook kernels"."""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import sys
from dataclasses import asdict, dataclass
from collections.abc import Callable, Iterable
from typing import Any

if __name__ == "__main__":  # run by path in the sandbox: forked.py lies next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from forked import read_line, redirect_fds, run_and_leave
else:
    from autograder.sandbox.forked import read_line, redirect_fds, run_and_leave

SOCKET_NAME = "kernel-zygote.sock"
SOCKET_ENV = "CS231N_KERNEL_ZYGOTE"
MAX_REQUEST = 1 << 20
MAX_REPLY = 65536


@dataclass(frozen=True)
class KernelRequest:
    """A launcher's request for one kernel: its work folder (cwd), whole environment and
    ipykernel's arguments (argv); its log file's fd goes beside it (SCM_RIGHTS)."""

    cwd: str
    env: dict[str, str]
    argv: list[str]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> KernelRequest:
        fields = json.loads(data)
        return cls(str(fields["cwd"]), dict(fields["env"]), list(fields["argv"]))


@dataclass(frozen=True)
class KernelReply:
    """The zygote's answer: the kernel's pid (its pidfd goes beside it), or why there is none."""

    pid: int | None = None
    error: str = ""

    def to_json(self) -> bytes:
        return json.dumps({"pid": self.pid} if self.pid is not None else {"error": self.error}).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> KernelReply:
        fields: dict[str, Any] = json.loads(data or b"{}")
        return cls(fields.get("pid"), str(fields.get("error", "no answer")))


def request_kernel(address: str, request: KernelRequest, log_fd: int) -> tuple[socket.socket, int]:
    """Ask the zygote at address for a kernel, its stdout and stderr going to log_fd. Returns (connection, pidfd of the kernel); the kernel lives until it
    ends or the connection closes."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(address)
    socket.send_fds(conn, [request.to_json()], [log_fd])
    answer, fds, _, _ = socket.recv_fds(conn, MAX_REPLY, 1)
    reply = KernelReply.from_json(answer)
    if reply.pid is None or not fds:
        conn.close()
        raise RuntimeError(f"the kernel zygote did not start a kernel: {reply.error}")
    conn.settimeout(None)
    return conn, fds[0]


# --------------------------------------------------------------------------------------------
# The zygote's side, in the sandbox
# --------------------------------------------------------------------------------------------
def _become_kernel(request: KernelRequest, log_fd: int) -> None:
    """In the forked child: ipykernel in this process; never returns."""
    import tempfile

    os.setsid()  # its own session: the zygote kills it with whatever it started there
    redirect_fds(log_fd)
    os.closerange(3, 65536)  # its OOM priority (1000) it has from the grader, through the zygote
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    tempfile.tempdir = None
    sys.path[0] = request.cwd
    sys.argv = ["ipykernel_launcher", *request.argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=request.argv)


def _start_kernel(conn: socket.socket, listener: socket.socket,
                  others: Iterable[socket.socket]) -> tuple[int, int]:
    """Read one request from conn and fork its kernel; returns (pid, pidfd)."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 1)
    if not data.endswith(b"\n"):
        data += read_line(conn, MAX_REQUEST)
    if len(fds) != 1:
        raise ValueError("a request comes with the kernel's log file")
    request = KernelRequest.from_json(data)
    pid = os.fork()
    if pid == 0:
        for sock in (listener, conn, *others):
            sock.close()
        run_and_leave(lambda: _become_kernel(request, fds[0]))
    os.close(fds[0])
    return pid, os.pidfd_open(pid)


def _kill_all_but_me(pid: int, alone: bool) -> None:
    """End the kernel pid and, if no other kernel runs (alone), every process of the sandbox but
    the zygote and the sandbox's init; else only the kernel's session."""
    kills: tuple[tuple[Callable[[int, int], None], int], ...] = ((os.kill, -1),) if alone else ((os.killpg, pid), (os.kill, pid))
    for kill, target in kills:
        try:
            kill(target, signal.SIGKILL)
        except OSError:
            pass


def _from_outside(conn: socket.socket) -> bool:
    """True if conn's peer is outside the sandbox: its pid is not in the zygote's PID namespace
    (SO_PEERCRED gives 0). A process of the sandbox may not ask for kernels of its own."""
    pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid == 0


def serve(address: str, ready_fd: int, preload: Iterable[str]) -> None:
    """The zygote: import the modules named in preload, then one kernel per connection, until the
    sandbox ends."""
    import importlib

    for name in preload:
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
    kernels: dict[socket.socket, tuple[int, int]] = {}  # connection -> (pid, pidfd)
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
                    conn.sendall(KernelReply(error=f"{type(error).__name__}: {error}").to_json())
                    conn.close()
                    continue
                socket.send_fds(conn, [KernelReply(pid).to_json()], [pidfd])
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
    serve(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
