"""One grading run per course folder: an exclusive flock on course/.grading/lock.

The lock file holds a small JSON record of its holder (pid, host, start time), so a second run
can say who holds it. The record is only a description: the flock is what excludes, and the
kernel releases it when its holder dies (kill -9 included), so a record left by a dead run
never blocks. Processes forked by the holder (the pool workers) share the lock until they die
too, so a run's workers still alive also keep the next run out; when the recorded holder is
dead, the next run gives its workers a few seconds to finish dying before it refuses.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


STRAGGLER_SECONDS = 10  # a dead holder's forked children get this long to finish dying


@dataclass(frozen=True)
class Holder:
    """Who holds a course folder's lock."""

    pid: int
    host: str
    started: str  # ISO 8601, UTC

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Holder:
        data = json.loads(text)
        return cls(pid=int(data["pid"]), host=str(data["host"]), started=str(data["started"]))

    @classmethod
    def me(cls) -> Holder:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return cls(pid=os.getpid(), host=socket.gethostname(), started=now)


class CourseBusy(RuntimeError):
    """Another grading run holds the course folder's lock."""


def lock_path(course_root: str | Path) -> Path:
    return Path(course_root) / ".grading" / "lock"


def _read_holder(fd: int) -> Holder | None:
    try:
        return Holder.from_json(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError, KeyError):
        return None


def _gone(holder: Holder | None) -> bool:
    """True when holder's process is known dead (it ran on this host and no longer exists)."""
    if holder is None or holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _acquire(fd: int, path: Path) -> str | None:
    """flock fd; when the recorded holder is dead, wait up to STRAGGLER_SECONDS for the processes
    it forked (its pool workers, killed with it) to finish exiting. Returns None when locked,
    else a description of the holder."""
    deadline = time.monotonic() + STRAGGLER_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            holder = _read_holder(fd)
            if not _gone(holder) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    if holder is None:
        return "a run that has not written its record yet"
    described = f"process {holder.pid} on {holder.host}, started {holder.started}"
    if _gone(holder):
        described += (" (that process is gone, but processes it started still hold the lock: "
                      f"look for them with `fuser -v {path}`)")
    return described


_held: dict[str, Holder] = {}  # lock path -> Holder, of the locks this process holds (the lock nests in a process)


@contextmanager
def course_lock(course_root: str | Path) -> Iterator[Holder]:
    """Hold the course folder's grading lock for the `with` block; yields the Holder record.
    Nested uses in one process share the outer one's lock (the CLI's grade holds it around
    collect and grade_all, which takes it too).

    Raises CourseBusy at once when another live run holds it (a dead run's forked children get
    STRAGGLER_SECONDS to finish dying first)."""
    path = lock_path(Path(course_root).resolve())
    if _held.get(str(path)) is not None and _held[str(path)].pid == os.getpid():
        yield _held[str(path)]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        busy = _acquire(fd, path)
        if busy:
            raise CourseBusy(
                f"another grading run is working on {course_root}: {busy} (lock: {path}). "
                "Wait for it to finish; two runs on one course folder would corrupt each other's grades.")
        holder = Holder.me()
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.to_json().encode() + b"\n", 0)
        _held[str(path)] = holder
        try:
            yield holder
        finally:
            del _held[str(path)]
            os.ftruncate(fd, 0)  # the record goes with the lock
    finally:
        os.close(fd)  # releases the flock (when no forked child holds it any more)
