"""The folder a judge worker sees: a copy of a package's .py files and the worker's own files.

The copy is made by the grader (perhaps root) from untrusted input: symlinks, special files,
compiled files and oversized files are left out."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER_FILES = ("worker.py", "wire.py", "probes.py")  # all the worker may import of ours
MAX_FILE_BYTES = 2 << 20  # per file copied from a submission
MAX_PACKAGE_BYTES = 32 << 20
MAX_PACKAGE_FILES = 2000


def copy_package(src_parent: str | Path, dst_parent: str | Path) -> bool:
    """Copy the .py files of src_parent/cs231n to dst_parent/cs231n; False if there is no such
    package. Copying stops (True) past MAX_PACKAGE_BYTES or MAX_PACKAGE_FILES."""
    src = Path(src_parent) / "cs231n"
    if src.is_symlink() or not src.is_dir():
        return False
    total, count = 0, 0
    for folder, dirs, files in os.walk(src, followlinks=False):
        rel = Path(folder).relative_to(src)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                         and not os.path.islink(os.path.join(folder, d)))
        target = Path(dst_parent) / "cs231n" / rel
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                fd = os.open(os.path.join(folder, name),
                             os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                    continue
                total, count = total + info.st_size, count + 1
                if total > MAX_PACKAGE_BYTES or count > MAX_PACKAGE_FILES:
                    return True
                data = f.read(MAX_FILE_BYTES)
            (target / name).write_bytes(data)
            os.chmod(target / name, 0o644)
    return True


def prepare(tmp: str | Path, pkg_parent: str | Path) -> tuple[Path, bool]:
    """tmp/w/{pkg/cs231n, judge/<WORKER_FILES>}; returns (w, whether a package was found).
    Only .py files are copied, so the judged package has no compiled layers to load."""
    w = Path(tmp) / "w"
    for sub in ("pkg", "judge"):
        (w / sub).mkdir(parents=True)
        os.chmod(w / sub, 0o755)
    os.chmod(w, 0o755)
    found = copy_package(pkg_parent, w / "pkg")
    for name in WORKER_FILES:
        shutil.copyfile(HERE / name, w / "judge" / name)
        os.chmod(w / "judge" / name, 0o644)
    return w, found
