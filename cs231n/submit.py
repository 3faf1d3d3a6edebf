"""Pack your work for hand-in: `python -m cs231n.submit` (or `make submit`) in the assignment folder.

First a report, notebook by notebook: not run, stopped at cell N (and with which exception), or
ran; the written answers still "YOUR ANSWER HERE"; then the tasks whose local checks fail. Then
it writes a2_submission.zip with exactly what is graded, every notebook of the assignment and the
.py files of the cs231n package, whatever the report says: it refuses only what cannot be handed
in (no notebooks, a notebook or package file missing or unreadable). The zip is written to a
temporary name and renamed when complete.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .tasks import TASKS_BY_FILE

SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}
UNANSWERED = "YOUR ANSWER HERE"  # nbgrader's placeholder in a written answer's cell
FAILED_TASKS_ENV = "CS231N_FAILED_TASKS"  # tests/conftest.py appends the failing tasks' names here


class SubmissionError(Exception):
    """The submission cannot be packed; the message says what to do."""


@dataclass
class NotebookReport:
    """What a notebook's saved state says: `state` (not run / stopped at cell N / ran)."""

    name: str
    state: str
    optional: bool = False
    unanswered: list = field(default_factory=list)  # grade ids (or "cell N") of empty answers

    @property
    def ready(self):
        return self.state == "ran" and not self.unanswered


def _text(source):
    return "".join(source) if isinstance(source, list) else source


def read_notebook(path):
    """The notebook's JSON; SubmissionError if it cannot be read (then it cannot be handed in)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SubmissionError(f"{Path(path).name} cannot be read as a notebook ({error}): "
                              "restore it (File > Revert Notebook to Checkpoint) or fetch it again") from None


def notebook_report(path):
    """A NotebookReport of the notebook at path, from its saved cells and outputs."""
    nb = read_notebook(path)
    cells = nb.get("cells", [])
    optional = nb.get("metadata", {}).get("cs231n", {}).get("points") == 0
    state = "ran"
    code = [c for c in cells if c.get("cell_type") == "code"]
    if code and not any(c.get("execution_count") for c in code):
        state = "not run"
    for number, cell in enumerate(cells, 1):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and state == "ran":
            value = str(errors[0].get("evalue", "")).strip().splitlines()
            count = f" (In [{cell['execution_count']}])" if cell.get("execution_count") else ""
            state = (f"stopped at cell {number}{count}: {errors[0].get('ename', 'error')}"
                     + (f": {value[0][:120]}" if value else ""))
    unanswered = [cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}"
                  for number, cell in enumerate(cells, 1)
                  if cell.get("cell_type") == "markdown" and UNANSWERED in _text(cell.get("source", ""))]
    return NotebookReport(Path(path).stem, state, optional, unanswered)


def failing_tasks(folder, timeout=1800):
    """Names of the tasks whose local checks (the tests/ folder) fail, in the order of the
    package; None when the checks could not be run (no tests/ folder, or pytest missing)."""
    folder = Path(folder)
    if not (folder / "tests").is_dir():
        return None
    with tempfile.NamedTemporaryFile("r", prefix=".failed-tasks-", dir=folder) as out:
        env = {**os.environ, FAILED_TASKS_ENV: out.name, "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:cacheprovider", "tests"],
                                  cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode not in (0, 1):  # 1: some checks failed; anything else: did not run
            return None
        failed = set(out.read().split())
    return [task for names in TASKS_BY_FILE.values() for task in names if task in failed]


def files_to_submit(folder):
    """(notebooks, package files) to pack from the assignment folder; raises SubmissionError
    only for what cannot be handed in."""
    folder = Path(folder)
    notebooks = sorted(folder.glob("*.ipynb"))
    package = folder / "cs231n"
    problems = []
    if not notebooks:
        problems.append(f"no notebooks in {folder}: run this in the assignment folder")
    if not package.is_dir():
        problems.append(f"no cs231n/ package in {folder}")
    for nb in notebooks:
        try:
            read_notebook(nb)
        except SubmissionError as error:
            problems.append(str(error))
    py_files = []
    if package.is_dir():
        missing = [f"cs231n/{name}" for name in TASKS_BY_FILE if not (package / name).is_file()]
        if missing:
            problems.append(f"missing {', '.join(missing)}: these files hold your work")
        py_files = sorted(p for p in package.rglob("*.py")
                          if not SKIP_DIRS & set(p.relative_to(folder).parts) and not p.is_symlink())
        unreadable = [p.relative_to(folder).as_posix() for p in py_files if not os.access(p, os.R_OK)]
        if unreadable:
            problems.append(f"cannot read {', '.join(unreadable)}: give it back read permission (chmod u+r)")
    if problems:
        raise SubmissionError("not submitted:\n  - " + "\n  - ".join(problems))
    return notebooks, py_files


def report_lines(reports, failed=None):
    """The hand-in report as lines of text: notebooks, unanswered questions, failing checks."""
    width = max((len(r.name) for r in reports), default=0)
    lines = ["Your notebooks, as saved:"]
    for r in reports:
        extra = " (extra credit: optional)" if r.optional else ""
        lines.append(f"  {r.name:<{width}}  {r.state}{extra}")
        if r.unanswered:
            lines.append(f"  {'':<{width}}  {len(r.unanswered)} written answer(s) still \"{UNANSWERED}\": "
                         + ", ".join(r.unanswered))
    if any(not r.ready and not r.optional for r in reports):
        lines.append("To finish a notebook: Kernel > Restart Kernel and Run All Cells..., fix what stops it, "
                     "answer the questions, save (File > Save Notebook).")
    if failed is None:
        lines.append("Local checks: not run.")
    elif failed:
        lines.append(f"Local checks failing for {len(failed)} task(s): {', '.join(failed)} "
                     "(`make check TASK=name` shows why).")
    else:
        lines.append("Local checks: all pass.")
    return lines


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
    parser.add_argument("--no-checks", action="store_true", help="skip running the local checks (quicker)")
    args = parser.parse_args(argv)
    try:
        notebooks, _ = files_to_submit(args.dir)
        reports = [notebook_report(nb) for nb in notebooks]
        failed = None if args.no_checks else failing_tasks(args.dir)
        print("\n".join(report_lines(reports, failed)))
        names = pack(args.dir, args.out)
    except SubmissionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(names)} files. Hand in this zip file.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
