"""Untrusted code in a bubblewrap sandbox: a root built from named binds only, as the run's
unprivileged user, in new namespaces, under rlimits and the run's cgroup.

    box = Sandbox(cwd=work, ro=[work], limits=Limits(memory_mb=2048), uid=student_user()[0])
    proc = sandboxed_popen(argv, box, group=RunGroup(...), env={...}, stdin=PIPE, stdout=PIPE)

What the command sees, and why: docs/isolation.md, "What a student run sees: an allow-list".
Without bwrap, sandboxed_popen refuses (BwrapMissing says how to install it)."""
from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.sandbox import forked
from autograder.sandbox.cgroups import RunGroup, kill_until_gone, limits_mode

log = logging.getLogger(__name__)

UID_BASE = 1_900_000_000  # student runs' users: UID_BASE + the grading worker's pid (no passwd entry)
INSTALL_HINT = ("install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu; `dnf install "
                "bubblewrap` on Fedora), or run `make install-dev`, which does it through .ci/install-bwrap")
__all__ = ["BwrapMissing", "CoursePackageInstalled", "Limits", "RunGroup", "Sandbox", "describe_exit", "end_user_processes",
           "isolation_available", "isolation_mode", "kill_tree", "limits_mode", "sandboxed_popen", "self_mode",
           "student_user", "trusted_popen", "user_processes"]


_PARENT = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execvp(sys.argv[1], sys.argv[1:])\n"
           "status = os.waitpid(pid, 0)[1]\n"
           "sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))")


class BwrapMissing(RuntimeError):
    """Student code is never run without the sandbox."""


class CoursePackageInstalled(RuntimeError):
    """The site-packages every sandbox sees holds a copy of the course's own package."""


COURSE_PACKAGES = ("cs231n", "autograder")  # never in a site-packages bound into a sandbox


@dataclass(frozen=True)
class Limits:
    """Limits of one sandbox (rlimits are per process and inherited by everything it starts).

    cpu_seconds: RLIMIT_CPU of each process (SIGXCPU, then SIGKILL past it).
    memory_mb: RLIMIT_AS of each process; allocations past it fail (MemoryError).
    nproc: RLIMIT_NPROC of the sandbox's uid, and the run cgroup's process limit.
    fsize_mb: RLIMIT_FSIZE, largest file it may write. nofile: RLIMIT_NOFILE.
    tmpfs_mb: size of its /tmp and /dev/shm.
    oom_score_adj: its processes' OOM priority (1000: first in line), set before bwrap starts by
    the grader (root); /proc is read-only inside, so nothing there can lower it.
    """

    cpu_seconds: int = 60
    memory_mb: int = 2048
    nproc: int = 256
    fsize_mb: int = 16
    nofile: int = 256
    tmpfs_mb: int = 64
    oom_score_adj: int = 1000

    @property
    def group_memory_mb(self) -> int:
        """Memory of the whole run (its cgroup): one process's limit, and room for the rest."""
        return self.memory_mb + 1024

    def rlimits(self) -> list[tuple[int, tuple[int, int]]]:
        """[(resource, (soft, hard))]. In self mode RLIMIT_NPROC counts every process of the caller
        (their desktop's too): the run may start nproc more than they have now, within their hard limit."""
        mb = 1024 * 1024
        nproc = self.nproc
        if self_mode():
            hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            nproc += len(user_processes(os.getuid()))
            nproc = nproc if hard == resource.RLIM_INFINITY else min(nproc, hard)
        return [(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 1)),
                (resource.RLIMIT_AS, (self.memory_mb * mb,) * 2),
                (resource.RLIMIT_NPROC, (nproc,) * 2),
                (resource.RLIMIT_FSIZE, (self.fsize_mb * mb,) * 2),
                (resource.RLIMIT_NOFILE, (self.nofile,) * 2),
                (resource.RLIMIT_CORE, (0, 0))]


def bwrap() -> str:
    """The bwrap executable; BwrapMissing (saying how to get it) if there is none."""
    path = shutil.which("bwrap")
    if path is None:
        raise BwrapMissing(f"grading runs student code only inside bubblewrap (`bwrap`), which is "
                           f"not installed: {INSTALL_HINT}")
    return path


def isolation_available() -> bool:
    """True where student code can be sandboxed: bwrap is installed."""
    return shutil.which("bwrap") is not None


def self_mode() -> bool:
    """True where student runs use the calling user's own ids: without root no user can be made
    for a run (a self-learner grading their own work: `python -m autograder grade-mine`)."""
    return os.geteuid() != 0


def isolation_mode() -> str:
    """What a student run's result records: limits_mode(), marked "self" in self mode."""
    return f"self ({limits_mode()})" if self_mode() else limits_mode()


def describe_isolation() -> str:
    """How a student run is isolated on this machine, in a sentence for the person grading."""
    user = ("as your own user (self mode: without root no user of its own can be made per run, and the "
            "notebooks write to a private temporary folder instead of a tmpfs of the run's own)"
            if self_mode() else "as an unprivileged user of its own per run")
    limits = ("rlimits on each process (CPU time, memory, processes, file size); no cgroup can be made here"
              if limits_mode() == "rlimits" else f"rlimits on each process and a cgroup per run ({limits_mode()})")
    return (f"a bubblewrap sandbox (a root of named read-only binds, no network, new user, PID, IPC and UTS "
            f"namespaces) {user}; limits: {limits}")


def student_user(slot: int | None = None) -> tuple[int, int]:
    """(uid, gid) of the student run graded by this worker: UID_BASE + slot (default this
    process's pid, unique among the workers of this machine), so that RLIMIT_NPROC counts one
    student's processes only. The grader's own ids in self mode (it cannot switch)."""
    if self_mode():
        return os.getuid(), os.getgid()
    number = UID_BASE + (os.getpid() if slot is None else slot)
    return number, number


def interpreter_paths() -> tuple[list[str], list[str]]:
    """What this Python needs to run elsewhere: (read-only paths, paths to hide under them)."""
    paths = sysconfig.get_paths()
    site_packages = {os.path.realpath(paths[k]) for k in ("purelib", "platlib")}
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    binds = {os.path.realpath(sys.executable), stdlib, *site_packages}
    dynload = os.path.realpath(sysconfig.get_config_var("DESTSHARED") or stdlib)
    if not dynload.startswith(stdlib + os.sep) and os.path.isdir(dynload):
        binds.add(dynload)
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        binds.add(os.path.realpath(os.path.join(sysconfig.get_config_var("LIBDIR"),
                                                sysconfig.get_config_var("INSTSONAME"))))
    for folder in site_packages:
        copies = [name for name in COURSE_PACKAGES if os.path.isdir(os.path.join(folder, name))]
        if copies:
            raise CoursePackageInstalled(
                f"{folder} holds a copy of {', '.join(copies)} (a `pip install .`, not editable): "
                "every sandbox sees this site-packages, so student code could read the reference "
                "solutions and the compiled layers there. Reinstall the project editable: "
                "`pip uninstall cs231n && pip install -e .` (or `make install-dev`)")
    # the installation's own packages (pyenv's, the system's) are not the venv's
    base_site = os.path.join(stdlib, "site-packages")
    hidden = [base_site] if os.path.isdir(base_site) and base_site not in site_packages else []
    return sorted(binds), hidden


def site_packages() -> str:
    """This venv's site-packages (numpy and friends), as bound in every sandbox."""
    return os.path.realpath(sysconfig.get_paths()["purelib"])


@dataclass(frozen=True)
class Sandbox:
    """One sandbox's view (docs/isolation.md).

    cwd: its working folder. ro, rw: further folders bound read-only / read-write at their own
    paths. uid, gid: its user on the host. limits: Limits.
    """

    cwd: str
    ro: tuple[str, ...] = ()
    rw: tuple[str, ...] = ()
    uid: int = field(default_factory=lambda: student_user()[0])
    gid: int = field(default_factory=lambda: student_user()[1])
    limits: Limits = Limits()

    def binds(self) -> list[tuple[str, str]]:
        """[(flag, path)] of everything bound, in mount order."""
        system = []
        for path in ("/lib", "/lib64", "/lib32"):
            if os.path.islink(path):
                continue
            if os.path.isdir(path):
                system.append(("--ro-bind", path))
        system += [("--ro-bind", p) for p in ("/usr/lib", "/usr/lib64", "/usr/lib32") if os.path.isdir(p)]
        python, hidden = interpreter_paths()
        return [*system, *(("--ro-bind", p) for p in python), *(("--tmpfs", p) for p in hidden),
                *(("--ro-bind", os.path.realpath(p)) for p in self.ro),
                *(("--bind", os.path.realpath(p)) for p in self.rw)]

    def command(self, argv: Sequence[object]) -> list[str]:
        """The whole command line: [outer bwrap, if needed] [setpriv] bwrap ... -- argv."""
        size = str(self.limits.tmpfs_mb << 20)
        inner = [bwrap(), "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--disable-userns",
                 "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
                 "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
        for link in ("/lib", "/lib64", "/lib32"):
            if os.path.islink(link):
                inner += ["--symlink", os.readlink(link), link]
        for flag, path in self.binds():
            inner += [flag, path, path] if flag != "--tmpfs" else [flag, path]
        # bwrap's own root and /dev and the covers are tmpfs of no set size, writable by the box's
        # user: read-only, so that what it writes goes only to the sized /tmp and /dev/shm and its
        # rw binds (with no cgroup, nothing else would bound it)
        for flag, path in self.binds():
            inner += ["--remount-ro", path] if flag == "--tmpfs" else []
        # /proc read-only: no process inside may write a /proc file (its oom_score_adj above all)
        inner += ["--remount-ro", "/dev", "--remount-ro", "/proc", "--remount-ro", "/"]
        inner += ["--chdir", os.path.realpath(self.cwd), "--", *map(str, argv)]
        if (self.uid, self.gid) == (os.getuid(), os.getgid()):
            return inner
        become = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                  "--no-new-privs", "--"]
        return [*self._reach(), *become, *inner]

    def _reach(self) -> list[str]:
        """An outer bwrap (run as the grader) in which every bind source is reachable by the
        box's uid: each folder it may not traverse is covered by a tmpfs holding only the binds."""
        sources = [p for flag, p in self.binds() if flag != "--tmpfs"]
        covers: dict[str, list[str]] = {}
        for path in sources:
            parts = Path(path).parts
            for i in range(2, len(parts)):
                folder = str(Path(*parts[:i]))
                if not os.stat(folder).st_mode & 0o001:
                    covers.setdefault(folder, []).append(path)
                    break
        if not covers:
            return []
        outer = [bwrap(), "--dev-bind", "/", "/", "--die-with-parent"]
        for folder in sorted(covers, key=len):
            outer += ["--perms", "0755", "--tmpfs", folder]
            made = {folder}
            for path in covers[folder]:
                parts = Path(path).parts
                for i in range(len(Path(folder).parts) + 1, len(parts)):
                    step = str(Path(*parts[:i]))
                    if step not in made:
                        made.add(step)
                        outer += ["--perms", "0755", "--dir", step]
                outer += ["--bind", path, path]
        # the inner bwrap dies with its parent by a parent-death signal, which a parent without
        # CAP_KILL cannot send to another user: this bwrap drops it, so a root process that keeps
        # it (and dies with this bwrap) is the inner one's parent
        return [*outer, "--", os.path.realpath(sys.executable), "-I", "-S", "-c", _PARENT]


def _set_oom_score_adj(value: int) -> None:
    """Write this process's OOM priority (inherited by all it starts). Written by a process with
    CAP_SYS_RESOURCE it is also the least any of them may set (oom_score_adj_min)."""
    with open("/proc/self/oom_score_adj", "w") as adj:
        adj.write(str(value))


def _preexec(limits: Limits, group: RunGroup | None, die_with_parent: bool = False,
             oom_score_adj: int | None = None) -> Callable[[], None]:
    libc = forked.load_libc() if die_with_parent else None  # loaded before the fork
    rlimits = limits.rlimits()  # before the fork too: it may read /proc

    def run() -> None:
        if libc is not None:
            forked.die_with_parent(libc=libc)
        if oom_score_adj is not None:
            _set_oom_score_adj(oom_score_adj)
        for which, value in rlimits:
            resource.setrlimit(which, value)
        if group is not None:
            group.join()
    return run


def sandboxed_popen(argv: Sequence[object], box: Sandbox, *, group: RunGroup | None = None,
                    env: dict[str, str] | None = None, **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen(argv) inside the sandbox `box` (a Sandbox), in its own session.

    group: the run's RunGroup (its processes join it before anything runs). env: the whole
    environment (nothing is inherited; default empty). Other keyword arguments go to Popen.
    Returns the Popen; stop it with kill_tree(proc). Raises BwrapMissing without bwrap."""
    command = box.command(argv)
    # preexec_fn only calls setrlimit and writes a pid into the group: start sandboxes from one
    # thread (or from processes)
    return subprocess.Popen(command, cwd="/", env=env if env is not None else {},
                            preexec_fn=_preexec(box.limits, group, oom_score_adj=box.limits.oom_score_adj),  # noqa: PLW1509
                            start_new_session=True, close_fds=True, **popen_kwargs)


def trusted_popen(argv: Sequence[str | os.PathLike[str]], cwd: str | Path, limits: Limits, *, env: dict[str, str] | None = None,
                  **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Our own code (the reference package), with the limits only, in its own session; it dies
    with the process that started it."""
    return subprocess.Popen(argv, cwd=cwd, env=env if env is not None else {},
                            preexec_fn=_preexec(limits, None, die_with_parent=True),  # noqa: PLW1509
                            start_new_session=True, close_fds=True, **popen_kwargs)


def kill_tree(proc: subprocess.Popen[Any], wait: float = 5.0) -> None:
    """SIGKILL the sandbox (its session; bwrap's --die-with-parent takes the rest) and reap it;
    safe to call twice."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        log.warning("sandbox: process %s did not die after SIGKILL", proc.pid)


def close_pipes(proc: subprocess.Popen[Any]) -> None:
    """Close the parent's ends of proc's stdin and stdout pipes, ignoring errors (a process that
    died may have left them broken)."""
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


def end_user_processes(uid: int, wait: float = 5.0) -> int:
    """SIGKILL every process of the host user uid (a student run's), until none is left (dead
    ones waiting for their parent to collect them do not count). Returns how many were found at
    first."""
    if uid == os.getuid():
        return 0
    return kill_until_gone(lambda: user_processes(uid), wait)


def user_processes(uid: int) -> list[int]:
    """The pids of the host user uid's living processes (not the dead waiting to be collected)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
            except (OSError, IndexError):
                pass
    return found


def describe_exit(returncode: int | None) -> str:
    """'exited with code 3', 'was killed by SIGKILL', ... for a Popen returncode (or None)."""
    if returncode is None:
        return "is still running"
    if returncode < 0 or returncode > 128:  # bwrap reports a signal death of its child as 128+n
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        why = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
               "SIGSEGV": " (segmentation fault)"}.get(name, "")
        return f"was killed by {name}{why}"
    return f"exited with code {returncode}"


if __name__ == "__main__":  # print the sandbox of this machine: python -m autograder.sandbox.bubblewrap
    print(" ".join(Sandbox(cwd="/tmp").command([sys.executable, "-I", "-S", "-c", "pass"])))
    print("limits:", limits_mode())
