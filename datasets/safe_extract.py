"""Extract one folder of a .tar.gz safely and atomically.

Safely: every member is checked before anything is written; an absolute name, a `..` part, a
link, a device or any member outside the expected folder makes the whole archive refused.
Atomically: members go into a temporary folder beside the target, which is renamed into place
only once every required file is there, so the target either does not exist or is complete.
"""
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath


class ArchiveError(ValueError):
    """The archive is truncated, corrupt, unsafe or lacks a required file; the message says which."""


def check_member(member, folder):
    """Raise ArchiveError unless `member` is a plain file or folder inside `folder/`.

    Inputs: member, a tarfile.TarInfo; folder, str, the one top-level folder allowed.
    """
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"refused: member {name!r} has an absolute path")
    if ".." in parts or "\\" in name:
        raise ArchiveError(f"refused: member {name!r} could land outside the target folder")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"refused: member {name!r} is a link or special file, "
                           "not a plain file or folder")
    if not parts or parts[0] != folder:
        raise ArchiveError(f"refused: member {name!r} is not inside {folder}/")


def extract_folder(archive, dest, folder, required=()):
    """Extract `folder/` of the .tar.gz `archive` into `dest/folder`, all or nothing.

    Inputs: archive, dest: paths; folder: str, the archive's single top-level folder;
    required: file names that must be in `folder/` for the extraction to count as complete.
    Returns: Path of the extracted folder.
    Raises ArchiveError for an unsafe, truncated or incomplete archive, OSError (e.g. ENOSPC)
    from the file system; in every case the temporary folder is removed and `dest/folder` is
    left untouched.
    """
    dest = Path(dest)
    final = dest / folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.extract-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()  # reads to the end: a truncated archive fails here
                for member in members:
                    check_member(member, folder)
                # the "data" filter (Python >= 3.10.12) re-checks paths and drops odd permissions
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **extra)
        except (tarfile.TarError, EOFError, zlib.error) as error:
            raise ArchiveError(f"{archive} is truncated or corrupt ({error})") from error
        missing = [name for name in required if not (tmp / folder / name).is_file()]
        if missing:
            raise ArchiveError(f"{archive} lacks {', '.join(missing)} in {folder}/")
        os.rename(tmp / folder, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
