"""The kernel launcher: what the kernelspec cs231n-sandboxed runs, by path, as the grader, in a
notebook's folder (`launcher.py -f CONNECTION_FILE ...`). It copies that folder (no notebooks)
into a work folder of the run, asks the run's kernel zygote for a kernel there and stays until
the kernel ends; it never imports nbgrader. docs/isolation.md, "Notebook kernels"."""
from __future__ import annotations

import os
import select
import shutil
import signal
import stat
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":  # started by path (the kernelspec): import the project, not this folder
    _root = str(Path(__file__).resolve().parents[2])
    sys.path[:] = [_root] + [p for p in sys.path[1:] if p != _root]

from autograder.notebooks import kernel_zygote
from autograder.notebooks.run import RunSpec, _kernel_env, _open_folder
from autograder.sandbox.forked import forward_signals

MAX_COPY_BYTES = 64 << 20  # of the notebook folder into the kernel's work folder
CONNECTION_FILE = ".kernel-connection.json"  # the kernel's copy of its connection file, in its work folder
MAX_CONNECTION_FILE = 1 << 16


def _copy_workdir(src: str, dest: str, limit: int = MAX_COPY_BYTES) -> None:
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


def _chown_tree(top: str, uid: int, gid: int) -> None:
    """Give the tree at top to uid, bottom-up (top last: until then only its owner can enter),
    through fds opened without following links."""
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                os.fchown(fd, uid, gid)
            finally:
                os.close(fd)
    fd = _open_folder(top)
    try:
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def _owned_by_me(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _read_connection_file(path: str) -> bytes:
    """nbgrader's connection file, read only if it is a regular file of the grader's in a folder
    only the grader can change (never through a link): its text. Raises PermissionError if not."""
    folder = os.lstat(os.path.dirname(path))
    if not stat.S_ISDIR(folder.st_mode) or not _owned_by_me(folder):
        raise PermissionError(f"{os.path.dirname(path)} may be changed by others than the grader")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not _owned_by_me(info) or info.st_size > MAX_CONNECTION_FILE:
            raise PermissionError(f"{path} is not a regular file of the grader's")
        return os.read(fd, MAX_CONNECTION_FILE)
    finally:
        os.close(fd)


def _check_zygote_address(address: str, uid: int) -> None:
    """The zygote's socket lies in a folder only the grader can change and is uid's socket:
    nothing of the sandbox can point the launcher's connect elsewhere. Raises PermissionError."""
    folder = os.lstat(os.path.dirname(address))
    if not stat.S_ISDIR(folder.st_mode) or not _owned_by_me(folder):
        raise PermissionError(f"the zygote's folder {os.path.dirname(address)} may be changed by others "
                              "than the grader")
    info = os.lstat(address)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != uid:
        raise PermissionError(f"{address} is not the socket of the run's user")


def _zygote_log_tail(spec: RunSpec | None) -> str:
    return (spec.log_tail("kernel-zygote.log") if spec else "") or "(no log)"


def launch(args: list[str]) -> int:
    """Start the sandboxed kernel for `-f CONNECTION_FILE [extra kernel args]`; returns its code."""
    if len(args) < 2 or args[0] != "-f":
        print("usage: launcher.py -f CONNECTION_FILE [kernel arguments]", file=sys.stderr)
        return 2
    connection_file, extra = os.path.abspath(args[1]), list(args[2:])
    address = os.environ.get(kernel_zygote.SOCKET_ENV)
    spec = RunSpec.of_this_run()
    if spec is None or not address:
        print("kernel launcher: this kernel runs only in a grading run (sandboxed_nbgrader), whose kernel "
              f"zygote did not start; its log ends:\n{_zygote_log_tail(spec)}", file=sys.stderr)
        return 2
    try:
        notebook_dir = os.getcwd()
    except FileNotFoundError:
        print("kernel launcher: the notebook's folder is gone", file=sys.stderr)
        return 1
    try:  # the launcher is root: it never follows a path the sandbox can change
        connection = _read_connection_file(connection_file)
    except OSError as error:
        print(f"kernel launcher: refusing to start the kernel: {error}", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="work-", dir=spec.shared)  # the grader's, 0700, until chowned
    _copy_workdir(notebook_dir, work)
    with open(os.path.join(work, CONNECTION_FILE), "wb") as copy:
        copy.write(connection)
    _chown_tree(work, spec.uid, spec.gid)
    if "--HistoryManager.hist_file=:memory:" not in extra:
        extra.append("--HistoryManager.hist_file=:memory:")
    log = os.open(os.path.join(spec.logs, f"kernel-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _check_zygote_address(address, spec.uid)
        argv = ["-f", os.path.join(work, CONNECTION_FILE), *extra]
        request = kernel_zygote.KernelRequest(work, _kernel_env(spec.env, work), argv)
        conn, pidfd = kernel_zygote.request_kernel(address, request, log)
    except PermissionError as error:
        print(f"kernel launcher: refusing to start the kernel: {error}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        return 1
    finally:
        os.close(log)
    forward_signals(lambda signum: signal.pidfd_send_signal(pidfd, signum))
    try:
        select.select([pidfd], [], [])  # until the kernel ends
    finally:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        conn.close()  # the zygote kills the kernel and all it left
        os.close(pidfd)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
