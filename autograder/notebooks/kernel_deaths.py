"""Whose failure a notebook kernel's death is: the student's (a score) or the host's (not graded),
from counters of the Linux kernel no sandboxed process can change (the run's and nbgrader's
cgroups, /proc/vmstat), read by nbgrader's process (bounded_execute.BoundedExecute) before and
after each cell. docs/grading.md, "A student pays only for their own failures", has the rules."""
from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass
from collections.abc import Iterable
from pathlib import Path

from autograder.sandbox.cgroups import CGROUP_ROOT, PREFIX, own_paths, read_fields, read_number

AT_LIMIT_BYTES = 8 << 20  # a peak this close to the limit reached it (a charge is up to a 2 MB page)
V1_PEAKS = ("memory.max_usage_in_bytes", "memory.memsw.max_usage_in_bytes")


@dataclass(frozen=True)
class Counters:
    """The counters at one moment. run_*: of the kernels' cgroup (None where there is none):
    OOM kills, times it failed a charge (failcnt, v2 events), whether its peak is at its limit;
    nbgrader_*: the same two of nbgrader's own cgroup (None where nbgrader has none of the run's)."""

    host_oom_kills: int
    run_oom_kills: int | None = None
    run_failed: int | None = None
    run_at_limit: bool = False
    nbgrader_failed: int | None = None
    nbgrader_at_limit: bool = False


def _number(path: Path) -> int:
    return read_number(path) or 0


def at_limit_of(peak: int | None, limit: int) -> bool:
    """Whether a cgroup whose peak usage is `peak` bytes (None: unknown) reached its limit."""
    return peak is not None and peak >= limit - AT_LIMIT_BYTES


def _memory_counters(folder: str | Path) -> tuple[int, int, bool] | None:
    """(OOM kills, failed charges, peak at the limit) of one cgroup's memory folder, or None."""
    folder = Path(folder)
    if (folder / "memory.oom_control").exists():  # cgroup v1
        kills = read_fields(folder / "memory.oom_control").get("oom_kill")
        failed = _number(folder / "memory.failcnt") + _number(folder / "memory.memsw.failcnt")
        limits = (_number(folder / "memory.limit_in_bytes"), _number(folder / "memory.memsw.limit_in_bytes"))
        at_limit = any(at_limit_of(_number(folder / peak), limit) for peak, limit in zip(V1_PEAKS, limits)
                       if (folder / peak).exists())
        return None if kills is None else (kills, failed, at_limit)
    if (folder / "memory.events").exists():  # cgroup v2
        events = read_fields(folder / "memory.events")
        return events.get("oom_kill", 0), events.get("max", 0) + events.get("oom", 0), False
    return None


def own_run_group() -> Path | None:
    """The memory cgroup folder of this process when it is one made for a run (its name starts
    with RunGroup's prefix), else None: a shared cgroup's counters say nothing of the run."""
    paths = own_paths()
    for controller in ("memory", ""):  # cgroup v1, v2
        if controller in paths:
            folder = CGROUP_ROOT / controller / paths[controller].lstrip("/")
            if folder.name.startswith(PREFIX) and _memory_counters(folder) is not None:
                return folder
    return None


def counters(group_folders: Iterable[str | Path], nbgrader_group: Path | None = None,
             cell_starts: bool = False) -> Counters:
    """Counters now, for the run whose kernels' cgroup folders are group_folders (RunGroup.folders)
    and whose nbgrader runs in nbgrader_group (own_run_group(), or None). cell_starts: first reset
    the kernels' cgroup's peak, so that it tells of this cell only."""
    folders = [Path(f) for f in group_folders]
    if cell_starts:
        for folder, peak in ((f, p) for f in folders for p in V1_PEAKS):
            try:
                (folder / peak).write_text("0")  # v1: the peak starts again from the usage now
            except OSError:
                pass
    host = read_fields("/proc/vmstat").get("oom_kill", 0)
    run = next(filter(None, map(_memory_counters, folders)), None) or (None, None, False)
    nbgrader = (_memory_counters(nbgrader_group) if nbgrader_group else None) or (None, None, False)
    return Counters(host, *run, *nbgrader[1:])


def _rose(before: int | None, after: int | None) -> bool:
    return before is not None and after is not None and after > before


@dataclass(frozen=True)
class Death:
    """A kernel that died while a cell ran (or, at_start, before it answered at all): where;
    whether the machine's, the run's OOM killer acted meanwhile (counts; run_oom_kills None: no
    cgroup to ask); whether the run, or its nbgrader, reached its own limit; how its launcher
    ended (None: running; < 0: by that signal); first_of_run: no kernel of the run had started
    before, so none of the student's code had run yet."""

    notebook: str
    cell: int
    host_oom_kills: int
    run_oom_kills: int | None
    run_at_limit: bool
    nbgrader_at_limit: bool = False
    launcher_exit: int | None = None
    at_start: bool = False
    first_of_run: bool = False

    @classmethod
    def between(cls, notebook: str, cell: int, before: Counters, after: Counters,
                launcher_exit: int | None = None, at_start: bool = False, first_of_run: bool = False) -> Death:
        """The death of a kernel in cell, from the Counters before it ran and after it died."""
        kills = (None if before.run_oom_kills is None or after.run_oom_kills is None  # the cgroup could not be read
                 else after.run_oom_kills - before.run_oom_kills)
        return cls(notebook, cell, after.host_oom_kills - before.host_oom_kills, kills,
                   _rose(before.run_failed, after.run_failed) or after.run_at_limit,
                   _rose(before.nbgrader_failed, after.nbgrader_failed) or after.nbgrader_at_limit, launcher_exit,
                   at_start, first_of_run)

    def hosts_doing(self) -> str:
        """Why this death is the grader's (the host's), or "" when it is the student's. A kernel
        that did not start when it was the run's first had run none of the student's code: the
        grader's; a later one may have been stopped by an earlier kernel (they share a sandbox)."""
        if self.at_start and self.first_of_run:
            exit_ = "" if self.launcher_exit is None else f", its launcher's exit status {self.launcher_exit}"
            return f"it did not start, before any of the student's code had run{exit_}"
        if self.launcher_exit is not None and self.launcher_exit < 0:  # out of the student's reach...
            if self.nbgrader_at_limit:  # ...unless their run's nbgrader reached its own limit
                return ""
            return f"its launcher, a grader's process, was killed by {signal.Signals(-self.launcher_exit).name}"
        if self.run_oom_kills is None:  # no cgroup to ask: the machine's counter is all there is
            return "the machine's OOM killer acted while it ran" if self.host_oom_kills else ""
        if self.run_oom_kills and not self.run_at_limit:
            return ("the OOM killer took it while its run stayed under its own memory limit: the "
                    "grading machine ran short of memory")
        return ""

    def message(self) -> str:
        """The error shown in the cell where the kernel died (or, at_start, in nbgrader's log)."""
        host = self.hosts_doing()
        if host:
            return f"the kernel was killed from outside: {host}; this notebook is graded again"
        limit = " after its run reached its own memory limit" if self.run_at_limit or self.nbgrader_at_limit else ""
        if self.at_start:
            return (f"the kernel died before it answered{limit} (an earlier notebook's kernel shares its sandbox "
                    "and may have stopped it), so none of this notebook's cells ran")
        return (f"the kernel died while this cell ran{limit} (it ended itself, or was killed for "
                "passing its own limits), so this cell and the cells after it did not run")


def record(report: str | Path, death: Death) -> None:
    """Append death to the report file (one JSON line each)."""
    with open(report, "a") as out:
        out.write(json.dumps(asdict(death)) + "\n")


def read(report: str | Path | None) -> list[Death]:
    """The Deaths a report holds ([] when there is none)."""
    if not report or not os.path.exists(report):
        return []
    return [Death(**json.loads(line)) for line in Path(report).read_text().splitlines() if line.strip()]
