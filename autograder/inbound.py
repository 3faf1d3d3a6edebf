"""The exchange's inbound folder as nbgrader's collect should see it on a shared hub.

Every hub user may write to nbgrader's inbound/ (it is world-writable), and nbgrader's collect,
run by the grader, trusts what it finds there: it follows links inside a submission (a student's
`cs231n/layers.py` linked to the instructor's reference becomes the reference), takes a folder
named for another student (it only logs "cheating attempt?"), and fails as a whole on one folder
with a name it cannot parse or one that is too big. So collect_from_exchange runs nbgrader's
collect on a screened copy instead: each submission folder of the assignment is copied only if

- its name is nbgrader's `<student>+<assignment>+<timestamp>[+<random>]`;
- it belongs to the hub user it names;
- it holds only folders and regular files (no link, no pipe, no device), opened without
  following any link, so a file swapped for a link during the copy is refused, not followed;
- none of its files has a second name (a hard link made to a file the student could not read
  would otherwise be copied by the grader, who can);
- the grader can read all of it (a file the student made unreadable refuses that folder, not
  the whole collect);
- it is at most nbgrader's CourseDirectory.max_dir_size, holds at most MAX_ENTRIES files and
  folders, nested at most MAX_DEPTH deep (empty files cost no bytes, and a deep nest would
  exceed the grader's path length or recursion limit).

Every other folder is refused with the reason, and the others are collected as usual.
"""
import contextlib
import errno
import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .collect import MAX_FILES

MAX_ENTRIES = MAX_FILES  # as for a zip (autograder.collect)
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
    pass


@dataclass
class _Allowance:
    """What one submission folder may still hold."""

    bytes: int
    entries: int = MAX_ENTRIES


def screen(inbound, view, assignment_id, max_bytes):
    """Copy the acceptable submission folders of `assignment_id` from inbound into the empty
    folder view; returns the Refused ones."""
    from nbgrader.utils import parse_utc

    refused = []
    inbound_fd = os.open(inbound, DIRECTORY)
    try:
        for name in sorted(os.listdir(inbound_fd)):
            parts = name.rsplit("+", 3)
            if len(parts) < 3 or parts[1] != assignment_id:
                continue  # another assignment's (or not nbgrader's at all)
            try:
                entry = os.open(name, DIRECTORY, dir_fd=inbound_fd)
            except OSError as error:
                why = ("it is not a folder (a link or a file): submit with nbgrader"
                       if error.errno in (errno.ELOOP, errno.ENOTDIR) else _unreadable(name, error))
                refused.append(Refused(name, "", why))
                continue
            try:
                owner = _owner(os.fstat(entry).st_uid)
                try:
                    parse_utc(parts[2])
                except Exception:  # noqa: BLE001  (dateutil raises several kinds)
                    raise _Unsafe(f"its timestamp {parts[2]!r} is not nbgrader's: submit with nbgrader") from None
                if owner != parts[0]:
                    raise _Unsafe(f"it is named for {parts[0]!r} but belongs to the hub user {owner!r}: a "
                                  "submission may only be made by its own student")
                _copy_tree(entry, Path(view) / name, _Allowance(max_bytes), name)
            except _Unsafe as why:
                shutil.rmtree(Path(view) / name, ignore_errors=True)
                refused.append(Refused(name, owner, str(why)))
            finally:
                os.close(entry)
    finally:
        os.close(inbound_fd)
    return refused


def _owner(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _copy_tree(folder_fd, dest, allowance, where, depth=0):
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
def _reading(path):
    """An OSError while reading the student's path refuses their folder (not the whole collect)."""
    try:
        yield
    except OSError as error:
        raise _Unsafe(_unreadable(path, error)) from None


def _unreadable(path, error):
    return f"the grader could not read {path} ({os.strerror(error.errno)}): submit again with nbgrader"


def _copy_file(fd, size, dest, allowance, path):
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
