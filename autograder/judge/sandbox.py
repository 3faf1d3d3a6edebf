"""Run an untrusted command: resource limits, its own process group, and where the caller is
root, an unprivileged user, no network, its own PID namespace and hidden folders.

    proc = sandboxed_popen(argv, cwd, Limits(memory_mb=2048, cpu_seconds=60),
                           stdin=PIPE, stdout=PIPE, hide=[repo_root], expose=[venv, workdir])

What the child gets, as root (the grader here and in CI):
- `unshare --net --pid --fork --kill-child --mount --mount-proc`: a network namespace whose only
  interface (lo) is down, so every connect fails; a PID namespace in which the child is process
  1, so that when it dies (or the grader kills the unshare process) the kernel kills every
  process it left behind, double-forked or not; a private /proc.
- then this file, run as root inside the namespaces (`python -I -S sandbox.py SPEC`), mounts
  fresh small tmpfs on /tmp, /var/tmp and /dev/shm and on the caller's `writable` folders, an
  empty read-only tmpfs over every `hide` folder and over every folder the user could not
  traverse on the way to an `expose` folder (e.g. /root, where pyenv keeps Python), binds the
  `expose` folders back in, drops to the unprivileged user (setgroups/setgid/setuid, no new
  privileges, parent-death signal), and execs argv.
- from preexec_fn, before anything runs: RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC, RLIMIT_FSIZE,
  RLIMIT_NOFILE, RLIMIT_CORE 0, inherited through the execs; and a new session, so that
  `kill_tree` reaches the whole group.
Not root: the limits and the session only, and one warning saying so.

Run as a script this file is that launcher; it imports nothing outside the standard library.
"""
import ctypes
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

JUDGE_USER = "cs231n-judge"
FALLBACK_USER = "nobody"

# Linux constants (mount(2), prctl(2)).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
# Shared temporary folders: each sandbox gets fresh, small ones instead of the machine's.
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class Limits:
    """Kernel limits of one sandboxed process tree (inherited by everything it starts).

    cpu_seconds: RLIMIT_CPU, CPU time of each process (SIGXCPU, then SIGKILL past it).
    memory_mb: RLIMIT_AS, address space of each process; allocations past it fail (MemoryError).
    nproc: RLIMIT_NPROC, processes and threads of the sandbox user (all its sandboxes together).
    fsize_mb: RLIMIT_FSIZE, largest file it may write.
    nofile: RLIMIT_NOFILE, open file descriptors.
    tmpfs_mb: size of each writable folder it gets (/tmp, /var/tmp, /dev/shm and the caller's
    `writable` ones are fresh memory-backed tmpfs of this size; isolation only).
    """

    cpu_seconds: int = 60
    memory_mb: int = 2048
    nproc: int = 256
    fsize_mb: int = 16
    nofile: int = 256
    tmpfs_mb: int = 64

    def rlimits(self):
        mb = 1024 * 1024
        return [(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 1)),
                (resource.RLIMIT_AS, (self.memory_mb * mb,) * 2),
                (resource.RLIMIT_NPROC, (self.nproc,) * 2),
                (resource.RLIMIT_FSIZE, (self.fsize_mb * mb,) * 2),
                (resource.RLIMIT_NOFILE, (self.nofile,) * 2),
                (resource.RLIMIT_CORE, (0, 0))]


def isolation_available():
    """True where the full sandbox can be had: root, and util-linux unshare on PATH."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


_warned = False
_user = None


def _warn_once(text):
    global _warned
    if not _warned:
        _warned = True
        log.warning(text)


def sandbox_user():
    """(uid, gid) of the unprivileged sandbox user: JUDGE_USER, created as a system user
    without home or shell if missing; `nobody` if it cannot be created."""
    global _user
    if _user is None:
        import pwd

        try:
            entry = pwd.getpwnam(JUDGE_USER)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            made = subprocess.run([useradd, "--system", "--no-create-home", "--user-group",
                                   "--shell", "/usr/sbin/nologin", JUDGE_USER],
                                  capture_output=True, text=True, check=False)
            try:
                entry = pwd.getpwnam(JUDGE_USER)
            except KeyError:
                log.warning("could not create the user %s (%s); sandboxes run as %s",
                            JUDGE_USER, made.stderr.strip(), FALLBACK_USER)
                entry = pwd.getpwnam(FALLBACK_USER)
        _user = (entry.pw_uid, entry.pw_gid)
    return _user


def _preexec(limits):
    def run():
        for which, value in limits.rlimits():
            resource.setrlimit(which, value)
    return run


def sandboxed_popen(argv, cwd, limits=Limits(), *, env=None, hide=(), expose=(), writable=(),
                    isolate=None, **popen_kwargs):
    """subprocess.Popen(argv) in the sandbox described in the module docstring.

    cwd: the child's working folder (exposed automatically). env: its whole environment;
    nothing is inherited (default: empty), so give a scrubbed one. hide: folders to replace by
    an empty read-only folder. expose: folders that must stay reachable (this interpreter's
    prefixes are added; add the data the child reads). writable: existing folders that become
    fresh empty tmpfs owned by the sandbox user (its only writable places besides its own
    /tmp). isolate: True demands user, namespaces and mounts (RuntimeError if not root), False
    runs with the limits only, None uses them where available and warns once where not.
    Other keyword arguments go to Popen (stdin, stdout, stderr, ...).
    Returns the Popen; stop it with kill_tree(proc).
    """
    if isolate is None:
        isolate = isolation_available()
        if not isolate:
            _warn_once("sandbox: not running as root (or no `unshare`), so untrusted code runs as "
                       "this user, with network and without hidden folders; only resource limits "
                       "and a process group apply")
    elif isolate and not isolation_available():
        raise RuntimeError("sandbox: isolation needs root and util-linux `unshare`")
    cwd = os.path.abspath(cwd)
    if isolate:
        spec = {**launch_spec(cwd, limits, *sandbox_user(), hide=hide, expose=expose, writable=writable),
                "argv": list(map(str, argv))}
        argv = [shutil.which("unshare"), "--net", "--pid", "--fork", "--kill-child", "--mount",
                "--mount-proc", "--propagation", "private", "--",
                sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(spec)]
    # preexec_fn only calls setrlimit; start sandboxes from one thread (or from processes).
    return subprocess.Popen(argv, cwd=cwd, env=env if env is not None else {},
                            preexec_fn=_preexec(limits),  # noqa: PLW1509
                            start_new_session=True, close_fds=True, **popen_kwargs)


def launch_spec(cwd, limits, uid, gid, *, hide=(), expose=(), writable=()):
    """What enter_sandbox needs (the launcher's spec, without argv): see sandboxed_popen."""
    cwd = os.path.abspath(cwd)
    return {"uid": uid, "gid": gid, "cwd": cwd, "hide": [os.path.abspath(p) for p in hide],
            "tmpfs_mb": limits.tmpfs_mb, "private": [os.path.abspath(p) for p in writable],
            "expose": [os.path.abspath(p) for p in (*expose, cwd, *_interpreter_dirs())]}


def _interpreter_dirs():
    """Folders the child's Python needs: the venv, the base installation, the real executable."""
    return {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}


def kill_tree(proc, wait=5.0):
    """SIGKILL the sandbox's process group (with isolation, its PID namespace dies with it) and
    reap the process; safe to call twice."""
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


def describe_exit(returncode):
    """'exited with code 3', 'was killed by SIGKILL', ... for a Popen returncode (or None)."""
    if returncode is None:
        return "is still running"
    if returncode < 0 or returncode > 128:  # unshare reports a signal death of its child as 128+n
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        why = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
               "SIGSEGV": " (segmentation fault)"}.get(name, "")
        return f"was killed by {name}{why}"
    return f"exited with code {returncode}"


# --------------------------------------------------------------------------------------------
# The launcher: runs as root inside the new namespaces, before any untrusted code.
# --------------------------------------------------------------------------------------------
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    return libc


def _mount(libc, source, target, fstype, flags, data=None):
    enc = (lambda s: None if s is None else os.fsencode(s))
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths):
    paths = sorted(set(paths))
    return [p for p in paths if not any(p != o and _inside(p, o) for o in paths)]


def _plan(spec):
    """(scratch, covers, binds, private) for the launcher, all real absolute paths.

    scratch: the shared temporary folders, replaced by fresh small tmpfs (mode 1777).
    covers: the hidden folders, and on the way to each exposed folder the first one that others
    may not traverse; each gets an empty tmpfs, read-only once the binds are in.
    binds: the exposed folders that lie under a scratch or cover mount, bound back in.
    private: the caller's writable folders, each a fresh tmpfs owned by the sandbox user.
    """
    scratch = [p for p in SCRATCH if os.path.isdir(p) and not os.path.islink(p)]
    expose = _outermost(os.path.realpath(p) for p in spec["expose"] if os.path.isdir(p))
    covers = [os.path.realpath(p) for p in spec["hide"] if os.path.isdir(p)]
    for path in expose:
        parts = path.split("/")
        for i in range(2, len(parts)):
            ancestor = "/".join(parts[:i])
            if not os.stat(ancestor).st_mode & 0o001:
                covers.append(ancestor)
                break
    covers = [c for c in _outermost(covers) if not any(_inside(c, s) for s in scratch)]
    binds = [p for p in expose if any(_inside(p, m) and p != m for m in (*scratch, *covers))]
    return scratch, covers, binds, [os.path.realpath(p) for p in spec["private"]]


def enter_sandbox(spec):
    """In the calling process (root, inside its fresh namespaces): the mounts of the spec, its
    folder, then the sandbox user with no new privileges and the parent-death signal. Used by
    this launcher before it execs, and by autograder/kernel_zygote.py before it runs a kernel."""
    libc = _libc()
    scratch, covers, binds, private = _plan(spec)
    size = f"size={spec['tmpfs_mb']}m"
    # Open every folder to bind back before mounting anything: the binds come from these
    # handles, whatever is mounted over their paths meanwhile.
    handles = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in binds}
    for folder in scratch:
        _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"{size},mode=1777")
    for folder in covers:
        _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
    for path, fd in handles.items():
        os.makedirs(path, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        os.close(fd)
    for folder in covers:
        _mount(libc, None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for folder in private:
        _mount(libc, "tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV,
               f"{size},mode=0700,uid={spec['uid']},gid={spec['gid']}")
    os.chdir(spec["cwd"])
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    # Changing the uid cleared the parent-death signal that `unshare --kill-child` set: set it
    # again, so that killing unshare still kills this process (and with it the namespace).
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _launch(spec):
    enter_sandbox(spec)
    argv = spec["argv"]
    os.execve(argv[0], argv, dict(os.environ))


if __name__ == "__main__":
    try:
        _launch(json.loads(sys.argv[1]))
    except Exception as exc:  # noqa: BLE001  (any set-up failure is reported)
        print(f"sandbox launcher failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(121)
