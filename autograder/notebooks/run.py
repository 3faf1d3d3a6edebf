"""One student's nbgrader run with every notebook kernel in the run's bubblewrap sandbox.

sandboxed_nbgrader (the grading worker) makes the run: its spec, its cgroups, nbgrader's
arguments; enter_run (the forked process that becomes nbgrader) mounts the run's tmpfs and starts
the kernel zygote in the sandbox. docs/isolation.md, "Notebook kernels", tells the whole story."""
from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autograder.budget import TimeBudget
from autograder.notebooks import kernel_zygote
from autograder.notebooks.preload import EVERY_MODULE
from autograder.sandbox import bubblewrap as _sandbox
from autograder.sandbox import forked

HERE = Path(__file__).resolve().parent
KERNEL_NAME = "cs231n-sandboxed"
JUPYTER_PATH = HERE  # holds kernels/cs231n-sandboxed/kernel.json
SPEC_ENV = "CS231N_KERNEL_SANDBOX"  # the run's spec: a JSON file written by the grader
NBGRADER_MEMORY_MB = 1024  # one student's nbgrader run, in a cgroup of its own
NBGRADER_PIDS = 256  # its processes and threads (the kernels' launchers among them)
KERNELS_MOUNT = "/run/cs231n-kernels"  # the run's tmpfs, in the run's own mount namespace
RUN_TMPFS_MB = 512
NBGRADER_RUNTIME, IPC_FOLDER, ZYGOTE_FOLDER = "nbgrader", "runtime", "zygote"  # in the run's shared folder
KERNEL_LIMITS = {"cpu_seconds": 3600, "memory_mb": 4096, "nproc": 128, "fsize_mb": 64,
                 "nofile": 1024, "tmpfs_mb": 128}
ENV_PASSED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CS231N_DATASET", "CS231N_FAST", "MPLBACKEND")
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_NOSYMFOLLOW, MS_REC, MS_PRIVATE = 0x00020000, 2, 4, 256, 16384, 1 << 18


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

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    run_spec: str | None = None
    group: list[str] = field(default_factory=list)
    peak_bytes: int | None = None
    out_of_memory: bool = False


@dataclass(frozen=True)
class RunSpec:
    """The run as the grader made it, for enter_run, the launchers and BoundedExecute: a JSON
    file of the grader's, named by SPEC_ENV. uid, gid: the run's user; limits: its sandbox's;
    env: variables the kernels get; shared: its shared folder (a tmpfs of its own if tmpfs);
    group: the kernels' cgroup folders; logs: the kernels' logs; budget: its time limits;
    preload: the modules its kernel zygote imports (autograder.notebooks.preload)."""

    uid: int
    gid: int
    limits: _sandbox.Limits
    env: dict[str, str]
    shared: str
    tmpfs: bool
    group: list[str]
    logs: str
    budget: TimeBudget = TimeBudget()
    preload: tuple[str, ...] = EVERY_MODULE

    def to_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "limits": asdict(self.limits), "budget": self.budget.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{**data, "limits": _sandbox.Limits(**data["limits"]),
                      "budget": TimeBudget.from_json(data.get("budget", {})),
                      "preload": tuple(data.get("preload", EVERY_MODULE))})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RunSpec:
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def of_this_run(cls) -> RunSpec | None:
        """The spec SPEC_ENV names in this process's environment (None outside a run)."""
        return cls.load(os.environ[SPEC_ENV]) if os.environ.get(SPEC_ENV) else None

    def log_tail(self, name: str, size: int = 2000) -> str:
        """The last size bytes of the run's log `name` (in logs), as text; "" if it cannot be read."""
        try:
            with open(os.path.join(self.logs, name), "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - size))
                return log.read().decode(errors="replace")
        except OSError:
            return ""


@contextmanager
def sandboxed_nbgrader(nbgrader_args: list[str], run_dir: str | Path, *, limits: Mapping[str, int] | None = None,
                       env: Mapping[str, str] | None = None, uid_slot: int | None = None, budget: TimeBudget = TimeBudget(),
                       preload: Sequence[str] = EVERY_MODULE,
                       overrun_report: str | Path | None = None, full_report: str | Path | None = None,
                       death_report: str | Path | None = None) -> Iterator[NbgraderRun]:
    """Yields the NbgraderRun that runs `nbgrader *nbgrader_args` with every kernel sandboxed.

    run_dir: an empty folder of the grader's for this run (the spec). The kernels' logs go to
    the run's tmpfs: what a kernel writes never reaches the grader's disk.
    limits: Limits fields overriding KERNEL_LIMITS. env: variables the kernels get (on top of a
    minimal PATH/HOME/LANG and ENV_PASSED). uid_slot: the run's user (sandbox.student_user).
    budget: the time limits (cell, notebook, kernel_zygote_start). preload: the modules the
    run's kernel zygote imports before it forks a kernel. overrun_report: a
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
    box_limits = _sandbox.Limits(**{**KERNEL_LIMITS, **(limits or {})})
    as_root = os.geteuid() == 0
    # the runtime folder holds the kernels' unix sockets, whose paths must stay under ~100 bytes
    shared = KERNELS_MOUNT if as_root else tempfile.mkdtemp(prefix="cs231n-k-")
    group = _sandbox.RunGroup(box_limits.group_memory_mb, box_limits.nproc)
    nbgrader_group = _sandbox.RunGroup(NBGRADER_MEMORY_MB, NBGRADER_PIDS)
    spec_file = run_dir / "kernel-sandbox.json"
    RunSpec(uid, gid, box_limits, dict(env or {}), shared, as_root, [str(f) for f in group.folders],
            f"{shared}/logs", budget, tuple(preload)).save(spec_file)
    # a lone KernelManager writes its connection file with mkstemp (so in TMPDIR: nbgrader's own
    # folder), and its ipc sockets at `ip`-N, a path relative to each process's folder unless given
    nbgrader_runtime = f"{shared}/{NBGRADER_RUNTIME}"
    args = [*nbgrader_args, f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
            f"--KernelManager.ip={shared}/{IPC_FOLDER}/kernel-ipc", f"--Execute.timeout={budget.cell}",
            f"--BoundedExecute.notebook_budget={budget.notebook}",
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


def preprocessor_args() -> list[str]:
    """nbgrader arguments that run the autograde preprocessors with BoundedExecute (named, not
    imported: only nbgrader's process imports autograder.notebooks.bounded_execute)."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    names = ["autograder.notebooks.bounded_execute.BoundedExecute"
             if cls is Execute else f"{cls.__module__}.{cls.__name__}"
             for cls in Autograde.class_traits()["autograde_preprocessors"].default()]
    return [f"--Autograde.autograde_preprocessors={name}" for name in names]


def _mount_run_tmpfs(folder: str) -> None:
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


def run_sandbox(spec: RunSpec) -> _sandbox.Sandbox:
    """The one sandbox of a run's kernels (its zygote's, which every kernel it forks shares):
    the run's shared folder writable, nothing else of the host's."""
    return _sandbox.Sandbox(cwd=spec.shared, rw=(spec.shared,), uid=spec.uid, gid=spec.gid, limits=spec.limits)


def enter_run(spec_file: str) -> dict[str, str]:
    """In the process that becomes nbgrader, before it reads anything: the run's shared folder
    and the kernel zygote in the sandbox (docs/isolation.md). Returns the environment entries
    that tell launchers where the zygote listens ({} if it did not start)."""
    spec = RunSpec.load(spec_file)
    shared = spec.shared
    if spec.tmpfs:
        _mount_run_tmpfs(shared)
    os.mkdir(os.path.join(shared, NBGRADER_RUNTIME), 0o700)
    os.makedirs(spec.logs, 0o700, exist_ok=True)
    # the kernels bind their ipc sockets here (links planted here are never followed: nosymfollow)
    ipc = os.path.join(shared, IPC_FOLDER)
    os.mkdir(ipc, 0o700)
    os.chmod(ipc, 0o1733)
    zygote_dir = _open_folder(os.path.join(shared, ZYGOTE_FOLDER), create=True)
    os.fchown(zygote_dir, spec.uid, spec.gid)  # the zygote's user binds its socket here...
    code = os.path.join(shared, "code")
    os.mkdir(code, 0o755)
    for source in (kernel_zygote.__file__, forked.__file__):
        target = os.path.join(code, os.path.basename(source))
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
    address = os.path.join(shared, ZYGOTE_FOLDER, kernel_zygote.SOCKET_NAME)
    box = run_sandbox(spec)
    argv = [os.path.realpath(sys.executable), "-I", "-S", os.path.join(code, "kernel_zygote.py"),
            _sandbox.site_packages(), address]
    ready_r, ready_w = os.pipe()
    zygote_log = os.open(os.path.join(spec.logs, "kernel-zygote.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(zygote_log, "ab") as log:  # 0600: the sandbox reaches it only through /proc/1/fd
        try:  # before nbgrader starts any thread: the preexec_fn of sandboxed_popen is safe here
            _sandbox.sandboxed_popen([*argv, str(ready_w), *spec.preload], box, group=_sandbox.RunGroup.attach(spec.group),
                                     env=_kernel_env(spec.env, "/tmp"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=log, pass_fds=(ready_w,))
        except (OSError, subprocess.SubprocessError) as error:  # as if it had not started in time: the
            # first kernel cannot start, and the launcher quotes this log (autograder.notebooks.kernel_deaths)
            log.write(f"the sandbox could not start the kernel zygote: {type(error).__name__}: {error}\n".encode())
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:  # at once at its end when the zygote never started
        ok = bool(select.select([ready], [], [], spec.budget.kernel_zygote_start)[0]) and ready.read(1) == b"1"
    os.fchown(zygote_dir, os.geteuid(), os.getegid())  # ...then no process of the sandbox may rename it
    os.fchmod(zygote_dir, 0o755)
    os.close(zygote_dir)
    return {kernel_zygote.SOCKET_ENV: address} if ok else {}


def _open_folder(path: str, create: bool = False) -> int:
    """An fd of the folder path itself (never a link's target); create: make it first, 0700."""
    if create:
        os.mkdir(path, 0o700)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def _kernel_env(extra: Mapping[str, str], home: str | Path) -> dict[str, str]:
    """A kernel's (and the kernel zygote's) whole environment: a minimal one, ENV_PASSED from
    the grader's, and the run's `extra` (RunSpec.env)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": "/tmp",
           "USER": "student", "LOGNAME": "student", "IPYTHONDIR": "/tmp/.ipython",
           "MPLCONFIGDIR": "/tmp/.matplotlib", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
           "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    env.update(extra)
    return env
