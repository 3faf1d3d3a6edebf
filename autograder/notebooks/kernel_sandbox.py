"""Notebook kernels for grading, in the student run's bubblewrap sandbox.

nbgrader itself (trusted: it holds the gradebook and the hidden tests) runs as the grader, outside;
only the kernels that execute the student's notebooks are untrusted, and they all run in one
sandbox per student run (autograder/sandbox/bubblewrap.py), forked from the run's kernel zygote:

    with sandboxed_nbgrader(["autograde", ...], run_dir, env={...}, budget=600) as run:
        nbgrader_zygote.run_nbgrader(run, cwd, log_path, timeout)   # calls enter_run first

- enter_run, in the process that becomes nbgrader: a private mount namespace with a small tmpfs
  on KERNELS_MOUNT (a short path for the unix sockets; it bounds what the kernels can write and
  vanishes with the run), holding nbgrader/ (nbgrader's runtime: its connection files; the
  grader's only), runtime/ (the kernels' ipc sockets; root's, 1733: no link there is followed, as the
  tmpfs is nosymfollow), zygote/ (the zygote's socket; the grader's once the zygote listens), code/
  (copies of kernel_zygote.py and forked.py) and the kernels' work folders; then the kernel
  zygote in the sandbox, whose only writable bind is that tmpfs.
- the kernelspec `cs231n-sandboxed` (autograder/notebooks/kernels/, found through JUPYTER_PATH) starts this
  file as the launcher, as the grader, in the notebook's autograded folder. It copies that folder
  without notebooks (they hold the hidden tests), links or oversized files into a work folder in
  the tmpfs, asks the zygote for a kernel there, forwards interrupts to it and kills it on
  SIGTERM; when the launcher dies, even by SIGKILL, the zygote kills the kernel's session.
- the kernel talks to nbclient over jupyter_client's `ipc` transport (unix sockets: TCP on
  127.0.0.1 cannot cross network namespaces); its own stdout/stderr go to a log in run_dir;
  the notebook's outputs are capped per cell by BoundedExecute, and no single ZMQ message may
  exceed MAX_MESSAGE_BYTES.
- BoundedExecute also bounds time: a cell past its timeout, or past what is left of the
  notebook's budget, is ended by killing the kernel (a loop may ignore SIGINT); that cell and
  every later code cell get an error output, and the notebook's name goes to the overrun report.
- when the run ends, everything in its cgroup and every process of its user is killed.

Run as a script this file is the launcher (`kernel_sandbox.py -f CONNECTION_FILE ...`).
"""
import ctypes
import dataclasses
import json
import os
import select
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
    _root = str(Path(__file__).resolve().parents[2])
    sys.path[:] = [_root] + [p for p in sys.path[1:] if p != _root]

from autograder.notebooks import kernel_deaths, kernel_zygote
from autograder.sandbox import forked
from autograder.sandbox.forked import forward_signals
from autograder.sandbox import bubblewrap as _sandbox

HERE = Path(__file__).resolve().parent
KERNEL_NAME = "cs231n-sandboxed"
JUPYTER_PATH = HERE  # holds kernels/cs231n-sandboxed/kernel.json
SPEC_ENV = "CS231N_KERNEL_SANDBOX"  # the run's spec: a JSON file written by the grader
MAX_CELL_OUTPUT_BYTES = 2 << 20  # outputs kept per cell (errors included); the rest is replaced by one line
MAX_NOTEBOOK_OUTPUT_BYTES = 32 << 20  # outputs kept per notebook (a student may add cells)
MAX_MESSAGE_BYTES = 4 * MAX_CELL_OUTPUT_BYTES  # largest ZMQ message part nbclient accepts from a kernel
MAX_QUEUED_MESSAGES = 8  # per socket, in nbgrader's process (ZMQ_RCVHWM): 64 MiB queued at most
ERROR_KEPT = (200, 4000, 50)  # an error within the caps: characters of its name, of each line; lines
ERROR_PAST_CAPS = (100, 300, 3)  # past them: only a cell's first error is kept, this short
NBGRADER_MEMORY_MB = 1024  # one student's nbgrader run, in a cgroup of its own
NBGRADER_PIDS = 256  # its processes and threads (the kernels' launchers among them)
MAX_COPY_BYTES = 64 << 20  # of the notebook folder into the kernel's work folder
KERNELS_MOUNT = "/run/cs231n-kernels"  # the run's tmpfs, in the run's own mount namespace
RUN_TMPFS_MB = 512
RUN_FULL_BYTES = 1 << 20  # free space under which a kernel has filled the run's tmpfs
NBGRADER_RUNTIME, IPC_FOLDER, ZYGOTE_FOLDER = "nbgrader", "runtime", "zygote"  # in the run's shared folder
CONNECTION_FILE = ".kernel-connection.json"  # the kernel's copy of its connection file, in its work folder
MAX_CONNECTION_FILE = 1 << 16
ZYGOTE_START_TIMEOUT = 120  # seconds for the kernel zygote's imports
KERNEL_LIMITS = {"cpu_seconds": 3600, "memory_mb": 4096, "nproc": 128, "fsize_mb": 64,
                 "nofile": 1024, "tmpfs_mb": 128}
ENV_PASSED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CS231N_DATASET", "CS231N_FAST", "MPLBACKEND")
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW, MS_REC, MS_PRIVATE = 0x00020000, 2, 4, 256, 16384, 1 << 18


# --------------------------------------------------------------------------------------------
# The grader's side: the run, and the process that becomes nbgrader
# --------------------------------------------------------------------------------------------
@dataclass
class NbgraderRun:
    """How to run nbgrader with every kernel in the student run's sandbox.

    args: nbgrader's command line after `nbgrader` (the caller's, plus the kernels' settings).
    env: variables to add to nbgrader's environment.
    run_spec: the spec file for enter_run, which the process that becomes nbgrader calls first.
    group: the folders of nbgrader's own cgroup (NBGRADER_MEMORY_MB), which it joins first.
    Set when the run ends: peak_bytes, the most memory nbgrader's cgroup held (None without
    one); out_of_memory, whether it hit its limit and the kernel's OOM killer ended a process.
    """

    args: list
    env: dict = field(default_factory=dict)
    run_spec: str = None
    group: list = field(default_factory=list)
    peak_bytes: int = None
    out_of_memory: bool = False


@contextmanager
def sandboxed_nbgrader(nbgrader_args, run_dir, *, limits=None, env=None, uid_slot=None, budget=0,
                       overrun_report=None, full_report=None, death_report=None):
    """Yields the NbgraderRun that runs `nbgrader *nbgrader_args` with every kernel sandboxed.

    run_dir: an empty folder of the grader's for this run (the spec). The kernels' logs go to
    the run's tmpfs: what a kernel writes never reaches the grader's disk.
    limits: Limits fields overriding KERNEL_LIMITS. env: variables the kernels get (on top of a
    minimal PATH/HOME/LANG and ENV_PASSED). uid_slot: the run's user (sandbox.student_user).
    budget: seconds each notebook may take in all (0: cell timeouts only). overrun_report: a
    file to which the names of notebooks that ran out of time are appended; full_report: one to
    which those whose kernel filled the run's tmpfs are (a student's own quota, not the host's);
    death_report: one to which each kernel death is appended (autograder.notebooks.kernel_deaths).
    When the run ends, every process of its cgroups and of its user is killed. nbgrader itself
    runs in a cgroup of its own, limited to NBGRADER_MEMORY_MB: what a student's kernels make it
    hold costs that student's run alone.
    """
    _sandbox.bwrap()  # no student code without the sandbox
    run_dir = Path(run_dir).resolve()
    uid, gid = _sandbox.student_user(uid_slot)
    limits = _sandbox.Limits(**{**KERNEL_LIMITS, **(limits or {})})
    as_root = os.geteuid() == 0
    # the runtime folder holds the kernels' unix sockets, whose paths must stay under ~100 bytes
    shared = KERNELS_MOUNT if as_root else tempfile.mkdtemp(prefix="cs231n-k-")
    group = _sandbox.RunGroup(limits.group_memory_mb, limits.nproc)
    nbgrader_group = _sandbox.RunGroup(NBGRADER_MEMORY_MB, NBGRADER_PIDS)
    spec = {"uid": uid, "gid": gid, "limits": dataclasses.asdict(limits), "env": dict(env or {}),
            "shared": shared, "tmpfs": as_root, "group": [str(f) for f in group.folders],
            "logs": f"{shared}/logs"}
    spec_file = run_dir / "kernel-sandbox.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    # a lone KernelManager writes its connection file with mkstemp (so in TMPDIR: nbgrader's own
    # folder), and its ipc sockets at `ip`-N, a path relative to each process's folder unless given
    nbgrader_runtime = f"{shared}/{NBGRADER_RUNTIME}"
    args = [*nbgrader_args, f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
            f"--KernelManager.ip={shared}/{IPC_FOLDER}/kernel-ipc", f"--BoundedExecute.notebook_budget={int(budget)}",
            *([f"--BoundedExecute.overrun_report={overrun_report}"] if overrun_report else []),
            *([f"--BoundedExecute.death_report={death_report}"] if death_report else []),
            *([f"--BoundedExecute.run_folder={shared}", f"--BoundedExecute.full_report={full_report}"]
              if full_report and as_root else [])]
    extra_env = {"JUPYTER_PATH": str(JUPYTER_PATH), "JUPYTER_RUNTIME_DIR": nbgrader_runtime,
                 "TMPDIR": nbgrader_runtime, SPEC_ENV: str(spec_file)}
    run = NbgraderRun(args, extra_env, str(spec_file), [str(f) for f in nbgrader_group.folders])
    try:
        yield run
    finally:
        run.peak_bytes, run.out_of_memory = nbgrader_group.peak_bytes(), nbgrader_group.oom_kills() > 0
        nbgrader_group.close()
        group.close()
        _sandbox.end_user_processes(uid)
        if not as_root:
            shutil.rmtree(shared, ignore_errors=True)


def _mount_run_tmpfs(folder):
    """This process (root, single-threaded) into a private mount namespace with a tmpfs on
    folder; it goes when the last process of the namespace does. No symlink on it is followed
    (nosymfollow): nbgrader's connects to the kernels' sockets cannot be sent elsewhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    os.makedirs(folder, mode=0o755, exist_ok=True)  # on the machine: an empty mount point
    for args in ((None, b"/", None, MS_REC | MS_PRIVATE, None),
                 (b"tmpfs", folder.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOSYMFOLLOW,
                  f"size={RUN_TMPFS_MB}m,mode=0711".encode())):
        if libc.mount(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {args[1]!r}: {os.strerror(err)}")


def run_sandbox(spec: dict) -> _sandbox.Sandbox:
    """The one sandbox of a run's kernels (its zygote's, which every kernel it forks shares):
    the run's shared folder writable, nothing else of the host's."""
    shared = spec["shared"]
    return _sandbox.Sandbox(cwd=shared, rw=(shared,), uid=spec["uid"], gid=spec["gid"],
                            limits=_sandbox.Limits(**spec["limits"]))


def enter_run(spec_file):
    """In the process that becomes nbgrader, before it reads anything: the run's shared folder
    and the kernel zygote in the sandbox (see the module docstring). Returns the environment
    entries that tell launchers where the zygote listens ({} if it did not start)."""
    spec = json.loads(Path(spec_file).read_text())
    shared = spec["shared"]
    if spec["tmpfs"]:
        _mount_run_tmpfs(shared)
    os.mkdir(os.path.join(shared, NBGRADER_RUNTIME), 0o700)
    os.makedirs(spec["logs"], 0o700, exist_ok=True)
    # the kernels bind their ipc sockets here (links planted here are never followed: nosymfollow)
    ipc = os.path.join(shared, IPC_FOLDER)
    os.mkdir(ipc, 0o700)
    os.chmod(ipc, 0o1733)
    zygote_dir = _open_folder(os.path.join(shared, ZYGOTE_FOLDER), create=True)
    os.fchown(zygote_dir, spec["uid"], spec["gid"])  # the zygote's user binds its socket here...
    code = os.path.join(shared, "code")
    os.mkdir(code, 0o755)
    for module in (kernel_zygote, forked):
        target = os.path.join(code, os.path.basename(module.__file__))
        shutil.copyfile(module.__file__, target)
        os.chmod(target, 0o644)
    address = os.path.join(shared, ZYGOTE_FOLDER, kernel_zygote.SOCKET_NAME)
    box = run_sandbox(spec)
    argv = [os.path.realpath(sys.executable), "-I", "-S", os.path.join(code, "kernel_zygote.py"),
            _sandbox.site_packages(), address]
    ready_r, ready_w = os.pipe()
    zygote_log = os.open(os.path.join(spec["logs"], "kernel-zygote.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(zygote_log, "ab") as log:  # 0600: the sandbox reaches it only through /proc/1/fd
        # before nbgrader starts any thread: the preexec_fn of sandboxed_popen is safe here
        _sandbox.sandboxed_popen([*argv, str(ready_w)], box, group=_sandbox.RunGroup.attach(spec["group"]),
                                 env=_kernel_env(spec, "/tmp"), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=log, pass_fds=(ready_w,))
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        ok = bool(select.select([ready], [], [], ZYGOTE_START_TIMEOUT)[0]) and ready.read(1) == b"1"
    os.fchown(zygote_dir, os.geteuid(), os.getegid())  # ...then no process of the sandbox may rename it
    os.fchmod(zygote_dir, 0o755)
    os.close(zygote_dir)
    return {kernel_zygote.SOCKET_ENV: address} if ok else {}


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


def _open_folder(path, create=False):
    """An fd of the folder path itself (never a link's target); create: make it first, 0700."""
    if create:
        os.mkdir(path, 0o700)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def _chown_tree(top, uid, gid):
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


def _owned_by_me(info):
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _read_connection_file(path):
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


def _check_zygote_address(address, uid):
    """The zygote's socket lies in a folder only the grader can change and is uid's socket:
    nothing of the sandbox can point the launcher's connect elsewhere. Raises PermissionError."""
    folder = os.lstat(os.path.dirname(address))
    if not stat.S_ISDIR(folder.st_mode) or not _owned_by_me(folder):
        raise PermissionError(f"the zygote's folder {os.path.dirname(address)} may be changed by others "
                              "than the grader")
    info = os.lstat(address)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != uid:
        raise PermissionError(f"{address} is not the socket of the run's user")


def _kernel_env(spec, home):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": "/tmp",
           "USER": "student", "LOGNAME": "student", "IPYTHONDIR": "/tmp/.ipython",
           "MPLCONFIGDIR": "/tmp/.matplotlib", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
           "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    env.update(spec.get("env", {}))
    return env


def _zygote_log_tail(spec, size=2000):
    try:
        with open(os.path.join(spec["logs"], "kernel-zygote.log"), "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            return log.read().decode(errors="replace")
    except (KeyError, OSError):
        return "(no log)"


def launch(args):
    """Start the sandboxed kernel for `-f CONNECTION_FILE [extra kernel args]`; returns its code."""
    if len(args) < 2 or args[0] != "-f":
        print("usage: kernel_sandbox.py -f CONNECTION_FILE [kernel arguments]", file=sys.stderr)
        return 2
    connection_file, extra = os.path.abspath(args[1]), list(args[2:])
    address = os.environ.get(kernel_zygote.SOCKET_ENV)
    spec = json.loads(Path(os.environ[SPEC_ENV]).read_text()) if os.environ.get(SPEC_ENV) else {}
    if not spec or not address:
        print("kernel_sandbox: this kernel runs only in a grading run (sandboxed_nbgrader), whose kernel "
              f"zygote did not start; its log ends:\n{_zygote_log_tail(spec)}", file=sys.stderr)
        return 2
    try:
        notebook_dir = os.getcwd()
    except FileNotFoundError:
        print("kernel_sandbox: the notebook's folder is gone", file=sys.stderr)
        return 1
    try:  # the launcher is root: it never follows a path the sandbox can change
        connection = _read_connection_file(connection_file)
    except OSError as error:
        print(f"kernel_sandbox: refusing to start the kernel: {error}", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="work-", dir=spec["shared"])  # the grader's, 0700, until chowned
    _copy_workdir(notebook_dir, work)
    with open(os.path.join(work, CONNECTION_FILE), "wb") as copy:
        copy.write(connection)
    _chown_tree(work, spec["uid"], spec["gid"])
    if "--HistoryManager.hist_file=:memory:" not in extra:
        extra.append("--HistoryManager.hist_file=:memory:")
    log = os.open(os.path.join(spec["logs"], f"kernel-{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _check_zygote_address(address, spec["uid"])
        argv = ["-f", os.path.join(work, CONNECTION_FILE), *extra]
        request = {"cwd": work, "env": _kernel_env(spec, work), "argv": argv}
        conn, pidfd = kernel_zygote.request_kernel(address, request, log)
    except PermissionError as error:
        print(f"kernel_sandbox: refusing to start the kernel: {error}", file=sys.stderr)
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


# --------------------------------------------------------------------------------------------
# nbgrader's side: the Execute preprocessor that bounds what a kernel can make it hold
# --------------------------------------------------------------------------------------------
def preprocessor_args():
    """nbgrader arguments that run the autograde preprocessors with BoundedExecute."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    names = [f"{__name__ if __name__ != '__main__' else 'autograder.notebooks.kernel_sandbox'}.BoundedExecute"
             if cls is Execute else f"{cls.__module__}.{cls.__name__}"
             for cls in Autograde.class_traits()["autograde_preprocessors"].default()]
    return [f"--Autograde.autograde_preprocessors={name}" for name in names]


def _message_bytes(content):
    """What content takes in a notebook file at most: its JSON, every non-ASCII character escaped."""
    return len(json.dumps(content, default=str))


class CellOverrun(Exception):
    """A cell ran past its time; its kernel has been killed."""


def _error(ename, text):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


def _cut_error(content, name_chars, chars, lines):
    """An error's fields (from an iopub message or an execute reply) cut short: a dict with
    ename, evalue and traceback (its last `lines` lines) only."""
    traceback = content.get("traceback")
    traceback = traceback[-lines:] if isinstance(traceback, list) else []
    return {"ename": str(content.get("ename", ""))[:name_chars], "evalue": str(content.get("evalue", ""))[:chars],
            "traceback": [str(line)[:chars] for line in traceback]}


def _bounded_execute():
    import time

    import asyncio

    import zmq
    import zmq.asyncio
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import ensure_async, run_sync
    from nbclient.exceptions import DeadKernelError
    from nbformat.v4 import new_output
    from zmq.utils.monitor import parse_monitor_message
    from nbgrader.preprocessors import Execute
    from traitlets import Integer, Unicode, default

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
        """nbgrader's Execute, bounded in what a kernel can make it hold and in time.

        Keeps at most max_cell_output_bytes of each cell's outputs and max_notebook_output_bytes
        of the notebook's, errors counted like the rest, whether they come on iopub or only in the
        execute reply (ERROR_KEPT); past either cap a cell keeps only its first error, cut to
        ERROR_PAST_CAPS, so that a failing cell still shows it failed. A kernel that sends a
        message part over MAX_MESSAGE_BYTES (ZMQ drops the connection) is stopped: its cell and
        every later one get an error. A cell past its timeout, or past what is left of
        notebook_budget, is ended by killing the kernel; it and every later code cell get an
        error output, and the notebook's name is appended to overrun_report. After each cell, if
        the run's tmpfs (run_folder) has under RUN_FULL_BYTES free, the notebook's name is
        appended to full_report (once). A kernel that dies stops its notebook the same way, and
        the death, with the counters that tell whose it is, goes to death_report."""

        max_cell_output_bytes = Integer(MAX_CELL_OUTPUT_BYTES, config=True,
                                        help="Outputs kept per cell, errors included.")
        max_notebook_output_bytes = Integer(MAX_NOTEBOOK_OUTPUT_BYTES, config=True,
                                            help="Outputs kept per notebook, errors included.")
        notebook_budget = Integer(0, config=True, help="Seconds for the whole notebook (0: no budget).")
        overrun_report = Unicode("", config=True, help="File listing the notebooks that ran out of time.")
        run_folder = Unicode("", config=True, help="The run's tmpfs, where the kernels write.")
        full_report = Unicode("", config=True, help="File listing the notebooks whose kernel filled run_folder.")
        death_report = Unicode("", config=True, help="File listing the kernels that died (kernel_deaths).")

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", BoundedKernelManager)
            super().__init__(*args, **kwargs)
            self._output_bytes, self._cut, self._kept = {}, set(), 0
            self._started, self._stopped, self._filled = time.monotonic(), "", False
            self._watches, self._too_big = [], False

        def preprocess(self, nb, resources=None, km=None):
            self._started, self._stopped, self._filled = time.monotonic(), "", False
            self._output_bytes, self._cut, self._kept = {}, set(), 0  # per cell; cells cut; the notebook's
            self._too_big = False
            self._name = ((resources or {}).get("metadata") or {}).get("name", "notebook")
            spec = json.loads(Path(os.environ[SPEC_ENV]).read_text()) if os.environ.get(SPEC_ENV) else {}
            self._groups = (spec.get("group", []), kernel_deaths.own_run_group())
            nb, resources = super().preprocess(nb, resources, km)
            info = nb.metadata.get("language_info")  # the kernel's word, kept uncounted: keep it small
            if info is not None and _message_bytes(info) > 4096:
                nb.metadata["language_info"] = {"name": "python"}
            return nb, resources

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            self._watches = [channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                             for channel in (kc.shell_channel, kc.iopub_channel)]
            return kc

        async def _async_cleanup_kernel(self):
            for watch in self._watches:
                watch.close(linger=0)
            self._watches = []
            await super()._async_cleanup_kernel()

        # nbclient's sync wrappers (nbconvert calls them) wrap its own coroutines: wrap these
        start_new_kernel_client = run_sync(async_start_new_kernel_client)
        _cleanup_kernel = run_sync(_async_cleanup_kernel)

        async def _cut_off(self):
            """True if ZMQ dropped a connection to the kernel while the kernel lives: it sent a
            message part over MAX_MESSAGE_BYTES (a kernel that dies closes its sockets too)."""
            dropped = False
            for watch in self._watches:
                while await watch.poll(0):
                    dropped = parse_monitor_message(await watch.recv_multipart())["event"] == zmq.EVENT_DISCONNECTED or dropped
            if dropped:
                await asyncio.sleep(1)
            return dropped and await ensure_async(self.kc.is_alive())

        async def _async_poll_kernel_alive(self):
            while True:
                await asyncio.sleep(1)
                if await self._cut_off():
                    self.log.error("The kernel sent a message over %s bytes: stopping it", MAX_MESSAGE_BYTES)
                    self._too_big = True
                    await self.km.shutdown_kernel(now=True)
                    self.task_poll_for_reply.cancel()  # nbclient raises DeadKernelError
                    return
                try:
                    await self._async_check_alive()
                except DeadKernelError:
                    self.task_poll_for_reply.cancel()
                    return

        def _left(self):
            return self.notebook_budget - (time.monotonic() - self._started) if self.notebook_budget else None

        def _get_timeout(self, cell):
            timeout, left = super()._get_timeout(cell), self._left()
            if left is not None:
                timeout = max(1, int(min(timeout or left, left)))
            return timeout

        async def _async_handle_timeout(self, timeout, cell=None):
            if cell is None:  # waiting for the kernel to start: nbclient's own handling
                return await super()._async_handle_timeout(timeout, cell)
            self.log.error("Cell %s ran longer than %s s: killing the kernel", cell.get("id", ""), timeout)
            await self.km.shutdown_kernel(now=True)
            raise CellOverrun(timeout)

        def _overran(self, why):
            self._stopped = why
            if self.overrun_report:
                with open(self.overrun_report, "a") as report:
                    report.write(f"{self._name}\n")

        def _note_filled(self):
            if self._filled or not (self.run_folder and self.full_report):
                return
            stats = os.statvfs(self.run_folder)
            if stats.f_bavail * stats.f_frsize < RUN_FULL_BYTES:
                self._filled = True
                with open(self.full_report, "a") as report:
                    report.write(f"{self._name}\n")

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type != "code" or not cell.source.strip():
                return cell, resources
            left = self._left()
            if not self._stopped and left is not None and left < 1:
                self._overran(f"the notebook used up its {self.notebook_budget} s")
            if self._stopped:
                cell.outputs = [_error("NotRun", f"not run: {self._stopped}")]
                return cell, resources
            before = kernel_deaths.counters(*self._groups, cell_starts=True)
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
                if run_sync(self._cut_off)():  # the cell ended before the once-a-second check
                    run_sync(self.km.shutdown_kernel)(now=True)
                    return self._too_large(cell, resources)
                return cell, resources
            except DeadKernelError:
                if not self._too_big:
                    return self._died(cell, resources, index, before)
                return self._too_large(cell, resources)
            except CellOverrun as overrun:
                cell.outputs.append(_error("CellTimeoutError", f"the cell ran longer than {overrun.args[0]} s, "
                                           "so its kernel was stopped"))
                self._overran(f"an earlier cell ran longer than {overrun.args[0]} s")
                return cell, resources
            finally:
                self._note_filled()

        def _died(self, cell, resources, index, before):
            """The kernel died in this cell: record whose failure that is, stop the notebook."""
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            death = kernel_deaths.Death.between(self._name, index, before, kernel_deaths.counters(*self._groups),
                                                process.poll() if process is not None else None)
            if self.death_report:
                kernel_deaths.record(self.death_report, death)
            cell.outputs.append(_error("DeadKernelError", death.message()))
            self._stopped = "the kernel died in an earlier cell"
            return cell, resources

        def _too_large(self, cell, resources):
            """The cell's kernel sent a message over MAX_MESSAGE_BYTES and was stopped: say so."""
            cell.outputs.append(_error("MessageTooLarge", f"the kernel sent a message over {MAX_MESSAGE_BYTES} "
                                       "bytes, the grader's limit, so it was stopped"))
            self._stopped = f"an earlier cell's kernel sent a message over {MAX_MESSAGE_BYTES} bytes"
            return cell, resources

        def _keep_error(self, content, cell, cell_index):
            """The error to keep of content (see the class docstring), counted; None: drop it."""
            used, room = self._output_bytes.get(cell_index, 0), self.max_notebook_output_bytes - self._kept
            error = _cut_error(content, *ERROR_KEPT)
            size = _message_bytes(error)
            if used + size > self.max_cell_output_bytes or size > room:
                if any(out.get("output_type") == "error" for out in cell.outputs):
                    return None  # the cell shows that it failed already
                error = _cut_error(content, *ERROR_PAST_CAPS)
                size = _message_bytes(error)
            self._output_bytes[cell_index] = used + size
            self._kept += size
            return error

        def on_cell_executed(self, **kwargs):
            """An error only in the execute reply becomes the cell's error output (as in nbgrader's
            Execute), cut and counted like any other; none if the cell shows one already."""
            cell, content = kwargs["cell"], kwargs["execute_reply"]["content"]
            if content.get("status") != "error" or any(out.get("output_type") == "error" for out in cell.outputs):
                return
            error = self._keep_error(content, cell, kwargs["cell_index"])
            if error is not None:
                cell.outputs.append(new_output("error", **{**error, "traceback": error["traceback"] or [
                    "ERROR: An error occurred while showtraceback was disabled"]}))

        def process_message(self, msg, cell, cell_index):
            kind, content = msg["msg_type"], msg["content"]
            room = self.max_notebook_output_bytes - self._kept
            if not isinstance(content.get("execution_count", 0), (int, type(None))):
                content["execution_count"] = None  # nbclient stores it in the cell, uncounted
            if kind == "error":
                error = self._keep_error(content, cell, cell_index)
                if error is None:
                    return None
                msg = {**msg, "content": error}
            elif kind not in ("status", "execute_input"):
                if cell_index in self._cut:  # cut already: drop without looking
                    return None
                used, size = self._output_bytes.get(cell_index, 0), _message_bytes(content)
                if used + size > self.max_cell_output_bytes or size > room:  # say so, once per cell
                    why = (f"more than {self.max_cell_output_bytes} bytes" if used + size > self.max_cell_output_bytes
                           else f"the notebook's outputs reached {self.max_notebook_output_bytes} bytes")
                    cell.outputs.append(new_output("stream", name="stderr", text=f"\n[output cut: {why}]\n"))
                    self._cut.add(cell_index)
                    return None
                self._output_bytes[cell_index] = used + size
                self._kept += size
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
