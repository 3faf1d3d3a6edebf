"""The exchange's inbound folder as nbgrader's collect should see it on a shared hub: a screened
copy holding, of each student, only the latest submission folder that is named for and owned by
them, holds only regular files and folders (opened without following links, no hard links),
and fits the course's size, entry and depth limits. docs/grading.md, "Intake".
"""
from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autograder.intake.collect import MAX_FILES

MAX_ENTRIES = MAX_FILES  # as for a zip (autograder.intake.collect)
MAX_DEPTH = 12  # the package needs 3 (cs231n/classifiers/cnn.py)
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
REGULAR = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # non-blocking: a pipe must not hang the open


@dataclass
class Refused:
    """A submission folder of inbound/ that was not copied: its name, whose it is, and why."""

    name: str
    owner: str
    why: str


class _Unsafe(Exception):
    def __init__(self, why: str, owner: str = "") -> None:
        super().__init__(why)
        self.owner = owner  # whose folder it is, where known


@dataclass
class _Allowance:
    """What one submission folder may still hold."""

    bytes: int
    entries: int = MAX_ENTRIES


def screen(inbound: str | Path, view: str | Path, assignment_id: str, max_bytes: int) -> list[Refused]:
    """Copy the latest acceptable submission folder of each student for `assignment_id` from
    inbound into the empty folder view (nbgrader's collect takes only the latest, so older ones
    are not copied); returns the Refused ones."""
    from nbgrader.utils import parse_utc

    refused: list[Refused] = []
    latest: dict[str, tuple[datetime, str]] = {}
    inbound_fd = os.open(inbound, DIRECTORY)
    try:
        for name in sorted(os.listdir(inbound_fd)):
            parts = name.rsplit("+", 3)
            if len(parts) < 3 or parts[1] != assignment_id:
                continue  # another assignment's (or not nbgrader's at all)
            try:
                owner = _submitted_by(inbound_fd, name, parts[0])
                stamp = parse_utc(parts[2])
            except _Unsafe as why:
                refused.append(Refused(name, why.owner, str(why)))
                continue
            except Exception:  # noqa: BLE001  (dateutil raises several kinds)
                refused.append(Refused(name, owner, f"its timestamp {parts[2]!r} is not nbgrader's: submit with nbgrader"))
                continue
            if owner not in latest or stamp > latest[owner][0]:
                latest[owner] = (stamp, name)
        for owner, (_, name) in sorted(latest.items()):
            try:
                entry = os.open(name, DIRECTORY, dir_fd=inbound_fd)
                try:
                    if _owner(os.fstat(entry).st_uid) != owner:
                        raise _Unsafe("it changed hands while it was collected: submit again with nbgrader")
                    _copy_tree(entry, Path(view) / name, _Allowance(max_bytes), name)
                finally:
                    os.close(entry)
            except OSError as error:  # replaced since it was looked at
                refused.append(Refused(name, owner, _unreadable(name, error)))
            except _Unsafe as why:
                shutil.rmtree(Path(view) / name, ignore_errors=True)
                refused.append(Refused(name, owner, str(why)))
    finally:
        os.close(inbound_fd)
    return refused


def _submitted_by(inbound_fd: int, name: str, student: str) -> str:
    """The hub user who owns the submission folder `name` of inbound, if it is `student`."""
    try:
        entry = os.open(name, DIRECTORY, dir_fd=inbound_fd)
    except OSError as error:
        raise _Unsafe("it is not a folder (a link or a file): submit with nbgrader"
                      if error.errno in (errno.ELOOP, errno.ENOTDIR) else _unreadable(name, error)) from None
    try:
        owner = _owner(os.fstat(entry).st_uid)
    finally:
        os.close(entry)
    if owner != student:
        raise _Unsafe(f"it is named for {student!r} but belongs to the hub user {owner!r}: a submission may "
                      "only be made by its own student", owner)
    return owner


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _copy_tree(folder_fd: int, dest: Path, allowance: _Allowance, where: str, depth: int = 0) -> None:
    """Copy the folder open as folder_fd to dest, never following a link, within allowance."""
    if depth > MAX_DEPTH:
        raise _Unsafe(f"{where} is nested more than {MAX_DEPTH} folders deep: submit with nbgrader")
    dest.mkdir()
    for item in os.scandir(folder_fd):
        path = f"{where}/{item.name}"
        allowance.entries -= 1
        if allowance.entries < 0:
            raise _Unsafe(f"it holds more than {MAX_ENTRIES} files and folders: submit with nbgrader")
        with _reading(path):  # it may be gone since it was listed
            mode = item.stat(follow_symlinks=False).st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            raise _Unsafe(f"it holds {path}, which is a link or a special file: submit regular files only")
        with _reading(path):  # e.g. swapped for a link since it was listed (ELOOP), or mode 000
            fd = os.open(item.name, DIRECTORY if stat.S_ISDIR(mode) else REGULAR, dir_fd=folder_fd)
        try:
            opened = os.fstat(fd)  # what was opened, which may differ from what was listed
            if stat.S_ISDIR(opened.st_mode):
                _copy_tree(fd, dest / item.name, allowance, path, depth + 1)
            elif not stat.S_ISREG(opened.st_mode):
                raise _Unsafe(f"{path} changed into a special file while it was copied")
            elif opened.st_nlink > 1:
                raise _Unsafe(f"{path} is a hard link (a file with a second name): submit with nbgrader")
            else:
                _copy_file(fd, opened.st_size, dest / item.name, allowance, path)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    """An OSError while reading the student's path refuses their folder (not the whole collect)."""
    try:
        yield
    except OSError as error:
        raise _Unsafe(_unreadable(path, error)) from None


def _unreadable(path: str, error: OSError) -> str:
    return f"the grader could not read {path} ({os.strerror(error.errno) if error.errno is not None else error}): submit again with nbgrader"


def _copy_file(fd: int, size: int, dest: Path, allowance: _Allowance, path: str) -> None:
    if size > allowance.bytes:  # before reading it (a sparse file costs nothing to make)
        raise _Unsafe("it is larger than the course allows (nbgrader's CourseDirectory.max_dir_size)")
    os.set_blocking(fd, True)
    with open(dest, "wb") as out:  # a write error is the grader's (its disk): it is raised, not refused
        while True:
            with _reading(path):
                chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            allowance.bytes -= len(chunk)
            if allowance.bytes < 0:
                raise _Unsafe("it is larger than the course allows (nbgrader's CourseDirectory.max_dir_size)")
            out.write(chunk)
