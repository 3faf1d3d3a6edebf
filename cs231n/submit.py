"""Pack your work for hand-in: `python -m cs231n.submit` (or `make submit`) in the assignment folder.

Writes a2_submission.zip with exactly what is graded: every notebook of the assignment and the
.py files of the cs231n package. It refuses, saying why, when a notebook is missing or has
never been run, or when a file of the package that holds your work is missing; nothing is
written then. The zip is written to a temporary name and renamed when complete.
"""
import argparse
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from .tasks import TASKS_BY_FILE

SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


class SubmissionError(Exception):
    """The submission cannot be packed; the message says what to do."""


def notebook_problems(path):
    """A list of reasons a notebook is not ready (empty when it is)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [f"{path.name} cannot be read as a notebook ({error})"]
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if code and not any(c.get("execution_count") for c in code):
        return [f"{path.name} has never been run: open it, run all cells (Kernel > Restart & Run All), save"]
    return []


def files_to_submit(folder):
    """(notebooks, package files) to pack from the assignment folder; raises SubmissionError."""
    folder = Path(folder)
    notebooks = sorted(folder.glob("*.ipynb"))
    package = folder / "cs231n"
    problems = []
    if not notebooks:
        problems.append(f"no notebooks in {folder}: run this in the assignment folder")
    if not package.is_dir():
        problems.append(f"no cs231n/ package in {folder}")
    for nb in notebooks:
        problems += notebook_problems(nb)
    py_files = []
    if package.is_dir():
        missing = [f"cs231n/{name}" for name in TASKS_BY_FILE if not (package / name).is_file()]
        if missing:
            problems.append(f"missing {', '.join(missing)}: these files hold your work")
        py_files = sorted(p for p in package.rglob("*.py")
                          if not SKIP_DIRS & set(p.relative_to(folder).parts) and not p.is_symlink())
    if problems:
        raise SubmissionError("not submitted:\n  - " + "\n  - ".join(problems))
    return notebooks, py_files


def pack(folder, out):
    """Write the zip `out` from `folder`; returns the list of archived names."""
    folder, out = Path(folder).resolve(), Path(out).resolve()
    notebooks, py_files = files_to_submit(folder)
    names = []
    fd, tmp = tempfile.mkstemp(prefix=".submission-", suffix=".zip", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in notebooks + py_files:
                name = path.relative_to(folder).as_posix()
                zf.write(path, name)
                names.append(name)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".", help="the assignment folder (default: here)")
    parser.add_argument("--out", default="a2_submission.zip", help="the zip to write")
    args = parser.parse_args(argv)
    try:
        names = pack(args.dir, args.out)
    except SubmissionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(names)} files")
    for name in names:
        print(f"  {name}")
    print("Hand in this zip file.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
