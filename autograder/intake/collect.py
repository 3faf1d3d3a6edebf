"""Collect submissions (a folder or zip per student, named by student id) into nbgrader's
submitted/<student>/<assignment>/ folders: only what is graded is taken, all or nothing per
student, a refused one says why and never stops the batch. docs/grading.md, "Intake".
"""
from __future__ import annotations

import errno
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.config import Course

MAX_FILE_BYTES = 20 * 2**20
MAX_TOTAL_BYTES = 100 * 2**20
MAX_FILES = 500
MAX_NAME_CHARS = 200  # of one file or folder name (Linux allows 255 bytes)
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                    zipfile.ZIP_LZMA: "lzma"}
METHOD_NAMES = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz", 98: "ppmd", 99: "AES encryption"}
REZIP = "make the zip again with ordinary (deflate) compression and no password, e.g. `zip -r a2.zip a2/`"
Entry = tuple[PurePosixPath, bytes]  # a file of a submission: its path inside it, its bytes
STUDENT_ID = re.compile(r"^(?P<student_id>[A-Za-z0-9][A-Za-z0-9.@-]{0,63}?)(?:_.*)?(?:\.zip)?$")


class SubmissionRefused(ValueError):
    """A submission that cannot be taken as it is; the message says why."""


@dataclass
class Collected:
    """One student's submission as collected: the files taken and skipped, or why it was refused."""

    student_id: str
    source: Path
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str = ""


def printable(text: object) -> str:
    """text for the instructor's terminal: characters that are not printable (a terminal's escape
    sequences, newlines in a file name a student chose) are shown escaped, never acted on."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def student_id_of(path: str | Path) -> str | None:
    """The student id a submission's file or folder name gives, or None."""
    match = STUDENT_ID.match(Path(path).name)
    return match.group("student_id") if match else None


def _wanted(parts: tuple[str, ...]) -> bool:
    """True for the files that are graded: top-level notebooks and cs231n/**/*.py."""
    if len(parts) == 1:
        return parts[0].endswith(".ipynb")
    return parts[0] == "cs231n" and parts[-1].endswith(".py") and "__pycache__" not in parts


def _strip_enclosing_folder(names: list[PurePosixPath]) -> list[PurePosixPath]:
    """If every name sits in one folder and no notebook is at the top, drop that folder."""
    tops = {n.parts[0] for n in names}
    if len(tops) == 1 and tops != {"cs231n"} and names and all(len(n.parts) > 1 for n in names):
        return [PurePosixPath(*n.parts[1:]) for n in names]
    return names


def _check_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise SubmissionRefused(f"unsafe path in the submission: {name!r}")
    return path


def _check_readable(info: zipfile.ZipInfo) -> None:
    """Refuse a member Python cannot inflate, saying how to make one it can."""
    if info.flag_bits & 0x1:
        raise SubmissionRefused(f"the zip is password-protected ({info.filename!r} is encrypted): {REZIP}")
    if info.compress_type not in READABLE_METHODS:
        method = METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise SubmissionRefused(f"{info.filename!r} is compressed with {method}, which the grader cannot "
                                f"read: {REZIP}")


def _read_zip(zip_path: Path) -> list[Entry]:
    """[(relative path, bytes)] of a zip's files, checked as they inflate."""
    entries: list[Entry] = []
    total = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_FILES:
                raise SubmissionRefused(f"{len(infos)} files in the zip, more than {MAX_FILES}")
            for info in infos:
                path = _check_member(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise SubmissionRefused(f"link in the submission: {info.filename!r}")
                _check_readable(info)
                with zf.open(info) as member:
                    data = member.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    raise SubmissionRefused(f"{info.filename!r} is larger than {MAX_FILE_BYTES >> 20} MB")
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    raise SubmissionRefused(f"the submission inflates to more than {MAX_TOTAL_BYTES >> 20} MB")
                entries.append((path, data))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise SubmissionRefused(f"the zip is damaged or not a zip ({type(error).__name__}: {error}): "
                                f"download it again to check it opens, then {REZIP}") from error
    return entries


def _read_folder(folder: Path) -> list[Entry]:
    """[(relative path, bytes)] of a folder's files; links refused, never followed."""
    entries: list[Entry] = []
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink():
            raise SubmissionRefused(f"link in the submission: {rel.as_posix()!r}")
        if not path.is_file():
            continue
        if len(entries) >= MAX_FILES:
            raise SubmissionRefused(f"more than {MAX_FILES} files in the submission")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubmissionRefused(f"{rel.as_posix()!r} is larger than {MAX_FILE_BYTES >> 20} MB")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise SubmissionRefused(f"the submission is larger than {MAX_TOTAL_BYTES >> 20} MB")
        entries.append((PurePosixPath(rel.as_posix()), path.read_bytes()))
    return entries


def _check_names(names: list[PurePosixPath]) -> None:
    """Refuse names no file system takes: too long, or a file that is also a folder."""
    folders = {PurePosixPath(*n.parts[:i]) for n in names for i in range(1, len(n.parts))}
    for name in names:
        long = [part for part in name.parts if len(part) > MAX_NAME_CHARS]
        if long:
            raise SubmissionRefused(f"a name of {len(long[0])} characters in the submission ({long[0][:40]}...), "
                                    f"more than {MAX_NAME_CHARS}: rename it")
        if name in folders:
            raise SubmissionRefused(f"{name.as_posix()!r} is both a file and a folder in the submission: "
                                    "keep one of them")


def collect_one(source: str | Path, dest: str | Path, timestamp: datetime | None = None) -> Collected:
    """Copy one student's submission (folder or zip) into dest, all or nothing.

    Returns a Collected with the files taken and those skipped; raises SubmissionRefused.
    """
    source, dest = Path(source), Path(dest)
    entries = _read_zip(source) if source.is_file() else _read_folder(source)
    names = _strip_enclosing_folder([p for p, _ in entries])
    _check_names(names)
    result = Collected(student_id_of(source) or "", source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for name, (_, data) in zip(names, entries):
            if not _wanted(name.parts):
                result.skipped.append(name.as_posix())
                continue
            target = tmp.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            result.files.append(name.as_posix())
        if not any(f.endswith(".ipynb") for f in result.files):
            raise SubmissionRefused("no notebook at the top of the submission")
        stamp = timestamp or datetime.fromtimestamp(source.stat().st_mtime, timezone.utc)
        (tmp / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def collect(submissions_dir: str | Path, course: Course) -> list[Collected]:
    """Collect every submission in submissions_dir into course's submitted/ tree.

    Returns a list of Collected, one per student (error set for refused ones, whose previous
    submission, if any, is left as it was). Two entries for one student id are an error for both.
    """
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"{submissions_dir} is not a folder of submissions")
    by_student: dict[str | None, list[Path]] = {}
    for entry in sorted(submissions_dir.iterdir()):
        if entry.name.startswith(".") or not (entry.is_dir() or entry.suffix == ".zip"):
            continue
        by_student.setdefault(student_id_of(entry), []).append(entry)
    results = []
    for student_id, entries in sorted(by_student.items(), key=lambda kv: str(kv[0])):
        if student_id is None:
            results += [Collected("", e, error="no student id in the name") for e in entries]
            continue
        if len(entries) > 1:
            names = ", ".join(e.name for e in entries)
            results.append(Collected(student_id, entries[0], error=f"several submissions ({names})"))
            continue
        results.append(_collect_student(student_id, entries[0], course))
    return results


def _collect_student(student_id: str, entry: Path, course: Course) -> Collected:
    """collect_one for one student, every failure kept as that student's error."""
    try:
        collected = collect_one(entry, course.step_dir("submitted", student_id))
        collected.student_id = student_id
        return collected
    except SubmissionRefused as error:
        return Collected(student_id, entry, error=str(error))
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            why = "the course's disk is full (the grader's problem, not the student's): free space and collect again"
        elif error.errno == errno.ENAMETOOLONG:
            why = "a name in the submission is too long for the file system: rename it"
        else:
            why = f"could not be read or written ({error}): check the file, then collect again"
        return Collected(student_id, entry, error=why)
    except Exception as error:  # noqa: BLE001 - one bad submission never stops the batch
        return Collected(student_id, entry, error=f"could not be collected ({type(error).__name__}: {error})")
