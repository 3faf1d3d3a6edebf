"""Gradescope: the autograder zip (`python -m autograder gradescope --out DIR`, with its Settings)
and what runs in Gradescope's container for every submission (`run_autograder` calls `run`):
collect and grade_all in a temporary course folder, then results.json, or one that says why not.
The zip's contents and the run: docs/publishing.md, "Gradescope, right away".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from autograder.budget import TimeBudget
from autograder.config import PACKAGE, ROOT, Course

SCRIPTS = ROOT / "platforms" / "gradescope"
SETTINGS = "gradescope.json"
STUDENT = "submission"  # the one student of a Gradescope run
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
PROJECT_FILES = ("setup.py", "pyproject.toml", "requirements.txt", "nbgrader_config.py")
SKIP = ("__pycache__", "*.pyc", "*.so", "*.c", ".ipynb_checkpoints", "*.egg-info")
HOW_TO_SUBMIT = ("Upload the a2_submission.zip that `make submit` writes in your assignment folder "
                 "(or its contents: the notebooks and the cs231n folder).")


class NotGradable(Exception):
    """The upload cannot be graded; the message tells the student why and what to upload."""


@dataclass(frozen=True)
class Settings:
    """What the instructor's machine tells Gradescope's container, as SETTINGS in the zip.

    torch: the pinned PyTorch requirement setup.sh installs ('' for none; setup.sh reads it by
    its key)."""

    assignment_id: str
    dataset: str
    budget: TimeBudget
    hidden_visibility: str
    torch: str

    def to_json(self) -> dict[str, Any]:
        return {"assignment_id": self.assignment_id, "dataset": self.dataset, "budget": self.budget.to_json(),
                "hidden_visibility": self.hidden_visibility, "torch": self.torch}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        """Settings from to_json's dict, or from a zip built before budgets travelled whole (its
        limits as cell_timeout and judge_timeout, the rest default)."""
        budget = (TimeBudget.from_json(data["budget"]) if "budget" in data else
                  TimeBudget().with_limits(cell=data.get("cell_timeout"), judge_case=data.get("judge_timeout")))
        return cls(assignment_id=data["assignment_id"], dataset=data["dataset"], budget=budget,
                   hidden_visibility=data["hidden_visibility"], torch=data.get("torch", ""))


# --------------------------------------------------------------------------------------------
# Building the zip (instructor's machine)
# --------------------------------------------------------------------------------------------
def _add_tree(zf: zipfile.ZipFile, folder: Path, arcname: str) -> None:
    """Add folder's files as arcname/..., leaving out builds and caches (SKIP)."""
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() \
                and not any(fnmatch(part, pattern) for part in rel.parts for pattern in SKIP):
            zf.write(path, f"{arcname}/{rel.as_posix()}")


def torch_requirement() -> str:
    """The pinned PyTorch requirement of pyproject.toml's extra `torch` ('torch==...')."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["torch"][0]


def build_autograder_zip(course: Course, out_dir: str | Path, dataset: str = "digits",
                         budget: TimeBudget = TimeBudget(), hidden_visibility: str = "after_published",
                         torch: bool = False) -> Path:
    """Write out_dir/autograder.zip for course's assignment; returns its path.

    hidden_visibility: when students see the results of tests that hold hidden material
    (function-level cases, notebook cells with hidden tests): one of VISIBILITIES. torch: setup.sh
    installs PyTorch (pinned as pyproject.toml's extra) and the PyTorch notebook is graded;
    without it that notebook carries no points there."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {VISIBILITIES}, not {hidden_visibility!r}")
    notebooks = sorted(course.source.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {course.source}: is --source right?")
    out = Path(out_dir).resolve() / "autograder.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(assignment_id=course.assignment_id, dataset=dataset, budget=budget,
                        hidden_visibility=hidden_visibility, torch=torch_requirement() if torch else "")
    fd, tmp = tempfile.mkstemp(prefix=".autograder-", suffix=".zip", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for script in ("setup.sh", "run_autograder"):
                info = zipfile.ZipInfo(script, date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = 0o755 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, (SCRIPTS / script).read_bytes())
            for name in PROJECT_FILES:
                zf.write(ROOT / name, name)
            _add_tree(zf, PACKAGE, "cs231n")
            _add_tree(zf, ROOT / "autograder", "autograder")
            _add_tree(zf, course.source, f"assignments/{course.assignment_id}")
            zf.writestr(SETTINGS, json.dumps(settings.to_json(), indent=1))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# --------------------------------------------------------------------------------------------
# results.json of an upload that could not be graded (a graded one: export.gradescope_results)
# --------------------------------------------------------------------------------------------
def not_graded(why: str) -> dict[str, Any]:
    """results.json for an upload that could not be graded: zero, and why."""
    return {"score": 0.0, "stdout_visibility": "hidden", "tests": [],
            "output": f"Your submission was not graded: {why}"}


# --------------------------------------------------------------------------------------------
# Inside Gradescope's container
# --------------------------------------------------------------------------------------------
def stage_upload(submission_dir: str | Path, uploads_dir: str | Path) -> Path:
    """Put Gradescope's submission folder where `collect` takes it: uploads_dir/STUDENT(.zip).

    Takes a single zip (as `make submit` writes it) or the unpacked files (notebooks at the top
    or in one folder, with cs231n/); raises NotGradable otherwise."""
    submission_dir, uploads_dir = Path(submission_dir), Path(uploads_dir)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    files = [p for p in submission_dir.rglob("*") if p.is_file()] if submission_dir.is_dir() else []
    if not files:
        raise NotGradable(f"the upload is empty. {HOW_TO_SUBMIT}")
    zips = [p for p in files if p.suffix.lower() == ".zip"]
    if any(p.suffix == ".ipynb" for p in files) and not zips:
        shutil.copytree(submission_dir, uploads_dir / STUDENT, symlinks=True)
        return uploads_dir / STUDENT
    if len(zips) == 1 and zipfile.is_zipfile(zips[0]):
        shutil.copyfile(zips[0], uploads_dir / f"{STUDENT}.zip")
        return uploads_dir / f"{STUDENT}.zip"
    names = ", ".join(sorted(p.relative_to(submission_dir).as_posix() for p in files)[:10])
    if len(zips) == 1:
        raise NotGradable(f"{zips[0].name} is not a valid zip file. {HOW_TO_SUBMIT}")
    if zips:
        raise NotGradable(f"the upload holds several zip files ({names}); upload exactly one. {HOW_TO_SUBMIT}")
    raise NotGradable(f"the upload holds no zip file and no notebook (found: {names}). {HOW_TO_SUBMIT}")


def grade_upload(root: str | Path) -> dict[str, Any]:
    """Grade root/submission with the settings in root/source; returns the results.json dict."""
    from autograder.intake.collect import collect
    from autograder.results.export import cells_with_hidden_tests, gradescope_results
    from autograder.grading.grade import grade_all

    root = Path(root)
    settings = Settings.from_json(json.loads((root / "source" / SETTINGS).read_text()))
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    try:
        course = Course(root=work / "course", db_url=f"sqlite:///{work / 'course' / 'gradebook.db'}",
                        source_root=root / "source" / "assignments", assignment_id=settings.assignment_id)
        try:
            stage_upload(root / "submission", work / "uploads")
        except NotGradable as error:
            return not_graded(str(error))
        collected = collect(work / "uploads", course)
        refused = [c.error for c in collected if c.error]
        if refused:
            return not_graded(f"{refused[0]}. {HOW_TO_SUBMIT}")
        results, failures = grade_all(course, students=[STUDENT], force=True, progress=False,
                                      dataset=settings.dataset, budget=settings.budget)
        if STUDENT not in results:
            why = failures.get(STUDENT, "the grader returned no result")
            return not_graded(f"the grader could not run it ({why}); the course staff can see the log.")
        return gradescope_results(results[STUDENT], cells_with_hidden_tests(course.source),
                                  settings.hidden_visibility).to_json()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(root: str | Path | None = None) -> int:
    """Grade the submission and write root/results/results.json, whatever happens; returns 0."""
    from autograder.results.feedback import write_atomically

    root = Path(root or os.environ.get("GRADESCOPE_ROOT") or "/autograder")
    started = time.time()
    try:
        payload = grade_upload(root)
    except Exception as error:  # noqa: BLE001 - the student must get a results.json in any case
        traceback.print_exc()
        payload = not_graded(f"the autograder failed ({type(error).__name__}); the course staff can see the log.")
    payload["execution_time"] = round(time.time() - started)
    write_atomically(root / "results" / "results.json", json.dumps(payload, indent=1))
    print(payload["output"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="grade $GRADESCOPE_ROOT/submission (what run_autograder does)")
    p.add_argument("--root", help="Gradescope's folder (default $GRADESCOPE_ROOT or /autograder)")
    args = parser.parse_args(argv)
    return run(args.root)


if __name__ == "__main__":
    sys.exit(main())
