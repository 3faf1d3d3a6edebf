"""The processes of one student run as one group (a cgroup under the grader's own, v1 or v2,
where the machine offers one; else "rlimits"): memory, processes and a CPU weight bounded
together, its memory counters read, every process of it killed at the end.

    group = RunGroup(memory_mb=3072, pids=256)
    sandbox.sandboxed_popen(argv, box, group=group, ...)   # its processes join it before exec
    group.close()                                  # SIGKILL whatever is left, remove the cgroup
docs/isolation.md, "Users and limits"."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "cs231n-"
CPU_SHARES_V1, CPU_WEIGHT_V2 = 1024, 100  # the defaults: every run weighs the same
_counter = 0
_modes: dict[int, str] = {}  # limits_mode() per effective uid: a process may drop root


def own_paths() -> dict[str, str]:
    """{controller: path of this process's cgroup}, from /proc/self/cgroup ("" for v2)."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _parents() -> tuple[str, list[Path]]:
    """(mode, [parent folders]) where a run's cgroup can be made, or ("rlimits", [])."""
    if os.geteuid() != 0:
        return "rlimits", []
    own = own_paths()
    v1 = [CGROUP_ROOT / name / own[name].lstrip("/") for name in ("memory", "pids") if name in own]
    if len(v1) == 2 and all((p / "cgroup.procs").is_file() for p in v1):
        cpu = CGROUP_ROOT / "cpu" / own.get("cpu", "").lstrip("/")
        return "cgroup v1", v1 + ([cpu] if "cpu" in own and (cpu / "cpu.shares").is_file() else [])
    v2 = CGROUP_ROOT / own.get("", "/").lstrip("/")
    try:
        enabled = (v2 / "cgroup.subtree_control").read_text().split()
    except OSError:
        enabled = []
    if (CGROUP_ROOT / "cgroup.controllers").is_file() and {"memory", "pids"} <= set(enabled):
        return "cgroup v2", [v2]
    return "rlimits", []


def limits_mode() -> str:
    """How a student run's memory and processes are bounded here: "cgroup v1", "cgroup v2" or
    "rlimits" (per process only). Tried once per effective user (a process that dropped root,
    a self-learner's grading, cannot make groups): a test group is made and removed."""
    uid = os.geteuid()
    if uid not in _modes:
        mode, parents = _parents()
        try:
            for parent in parents:
                probe = parent / f"{PREFIX}probe-{os.getpid()}"
                probe.mkdir(exist_ok=True)
                probe.rmdir()
        except OSError:
            mode = "rlimits"
        _modes[uid] = mode
    return _modes[uid]


def kill_until_gone(find: Callable[[], Iterable[int]], wait: float = 5.0) -> int:
    """SIGKILL the pids find() returns, again every 20 ms, until it returns none or `wait`
    seconds have passed; returns how many it found the first time."""
    deadline, first = time.monotonic() + wait, None
    while True:
        found = list(find())
        first = len(found) if first is None else first
        if not found or time.monotonic() > deadline:
            return first
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def _remove_stale(parent: Path) -> None:
    """Empty groups left by graders that were killed (their pid is in the name)."""
    for folder in parent.glob(f"{PREFIX}*-*"):
        owner = folder.name[len(PREFIX):].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                folder.rmdir()
            except OSError:
                pass


def read_fields(path: str | Path) -> dict[str, int]:
    """{name: int} of a cgroup file of `name value` lines (memory.events, memory.oom_control,
    /proc/vmstat); {} when it cannot be read."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split() for line in lines)
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def read_number(path: str | Path) -> int | None:
    """The number a cgroup file holds (memory.peak, memory.failcnt, ...); None when it cannot be
    read or holds none ("max")."""
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


class RunGroup:
    """One student run's cgroup (see the module docstring); `mode` says which kind."""

    def __init__(self, memory_mb: int, pids: int) -> None:
        global _counter
        self.mode, self.cpu_fair = limits_mode(), False
        self.folders: list[Path] = []
        if self.mode == "rlimits":
            return
        _counter += 1
        name = f"{PREFIX}{os.getpid()}-{_counter}"
        limit = str(int(memory_mb) << 20)
        for parent in _parents()[1]:
            _remove_stale(parent)
            folder = parent / name
            folder.mkdir()
            self.folders.append(folder)
            settings = {"cgroup v2": [("memory.max", limit), ("memory.swap.max", "0"), ("pids.max", str(pids)),
                                      ("cpu.weight", str(CPU_WEIGHT_V2))],
                        "cgroup v1": [("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit),
                                      ("pids.max", str(pids)), ("cpu.shares", str(CPU_SHARES_V1))]}[self.mode]
            for key, value in settings:
                if (folder / key).exists():
                    (folder / key).write_text(value)
                    self.cpu_fair = self.cpu_fair or key.startswith("cpu.")

    @classmethod
    def attach(cls, folders: Iterable[str | Path]) -> RunGroup:
        """The group whose folders are given (made by another process: a RunGroup's folders)."""
        group = cls.__new__(cls)
        group.folders = [Path(f) for f in folders]
        group.mode = limits_mode() if group.folders else "rlimits"
        group.cpu_fair = any((f / "cpu.shares").exists() or (f / "cpu.weight").exists() for f in group.folders)
        return group

    def join(self) -> None:
        """Move the calling process into the group (called between fork and exec)."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def pids(self) -> set[int]:
        """The pids in the group now."""
        found: set[int] = set()
        for folder in self.folders:
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def peak_bytes(self) -> int | None:
        """The most memory the group has held (page cache included), or None where this kernel
        does not keep it (no cgroup; cgroup v2 before Linux 5.19)."""
        for name in ("memory.max_usage_in_bytes", "memory.peak"):  # v1, v2
            for folder in self.folders:
                peak = read_number(folder / name)
                if peak is not None:
                    return peak
        return None

    def oom_kills(self) -> int:
        """How many processes of the group the kernel's OOM killer ended for its memory limit."""
        for name in ("memory.oom_control", "memory.events"):  # v1, v2
            for folder in self.folders:
                kills = read_fields(folder / name).get("oom_kill")
                if kills is not None:
                    return kills
        return 0

    def close(self, wait: float = 5.0) -> None:
        """SIGKILL every process of the group, then remove it."""
        kill_until_gone(self.pids, wait)
        for folder in self.folders:
            try:
                folder.rmdir()
            except OSError:
                pass
        self.folders = []
