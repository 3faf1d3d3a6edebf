"""The few things the forked children of the grading zygotes (autograder/notebooks/nbgrader_zygote.py,
autograder/notebooks/kernel_zygote.py) and the kernel launcher do: run a body and leave with its status,
die with the parent, forward signals, read a line, redirect output.
Standard library only: kernel_zygote.py runs it inside the sandbox."""
from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # for the annotations only: a child between fork and exec loads nothing
    import ctypes
    import socket
    from collections.abc import Callable
    from types import FrameType

PR_SET_PDEATHSIG = 1  # prctl(2)


def run_and_leave(body: Callable[[], object]) -> NoReturn:
    """Run body() and _exit with its status: 0, a SystemExit's code, or 1 after printing the
    traceback of any other error to stderr. Never returns (a forked child must not go back into
    its parent's loop)."""
    code = 1
    try:
        body()
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on stderr (a log file), then the child exits
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001, S110 - nowhere left to report to
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def load_libc() -> ctypes.CDLL:
    """The C library through ctypes, for die_with_parent in a child between fork and exec (which
    should load nothing: the parent loads it before the fork)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent: int | None = None, libc: ctypes.CDLL | None = None) -> bool:
    """From now on this process gets SIGKILL when its parent dies, however it dies. Returns False
    when `parent` (the pid the caller expects as its parent) is gone already. libc: load_libc()'s,
    when loaded already."""
    import ctypes

    libc = libc or load_libc()
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return parent is None or os.getppid() == parent


def forward_signals(send: Callable[[int], object]) -> None:
    """From now on SIGINT goes on as send(SIGINT) (a kernel interrupt), SIGTERM and SIGHUP as
    send(SIGKILL). No waiting in the handler: a wait in the main thread may hold the lock it
    would need."""
    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            send(signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)


def read_line(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    """Bytes from a socket up to its first newline (fewer if it closes first); at most limit."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def redirect_output(log_path: str) -> None:
    """stdin from /dev/null; stdout and stderr appended to log_path (created 0600)."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    redirect_fds(log)
    os.close(log)


def redirect_fds(log: int) -> None:
    """stdin from /dev/null; stdout and stderr to the open file descriptor log."""
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.close(null)
