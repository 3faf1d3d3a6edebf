"""The whole course in one command (`make demo`, `python -m autograder demo`): build the release,
make a demo class of submissions (DEMO_STUDENTS; docs/publishing.md, "The demo class"), grade
them with budget.DEMO, write feedback and grades, say where to look.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nbformat

from autograder.budget import DEMO, TimeBudget
from autograder.config import PACKAGE, Course, shown_url
from autograder.results.scale import course_scale, where_to_enter

DEMO_STUDENTS = ("reference", "starter", "partial", "syntax-error", "infinite-loop", "deleted-cell")

WRONG_CONV_BACKWARD = '''

_reference_conv_backward_naive = conv_backward_naive


def conv_backward_naive(dout, cache):  # demo: a gradient 1% too large
    dx, dw, db = _reference_conv_backward_naive(dout, cache)
    return 1.01 * dx, dw, db
'''
INFINITE_LOOP = '''

def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):  # demo: never returns
    while True:
        pass
'''
SYNTAX_ERROR = "\n\ndef broken(:\n    pass\n"


def _copy_package(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest / "cs231n", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc"))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def make_demo_class(source_dir: str | Path, release_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the demo submissions into out_dir/<student>/; returns out_dir."""
    source_dir, release_dir, out_dir = Path(source_dir), Path(release_dir), Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    for student in DEMO_STUDENTS:
        folder = out_dir / student
        folder.mkdir(parents=True)
        notebooks = release_dir if student == "starter" else source_dir
        for nb in sorted(notebooks.glob("*.ipynb")):
            shutil.copyfile(nb, folder / nb.name)
        _copy_package(release_dir / "cs231n" if student == "starter" else PACKAGE, folder)
    _append(out_dir / "partial" / "cs231n" / "layers.py", WRONG_CONV_BACKWARD)
    shutil.copyfile(release_dir / "cs231n" / "optim.py", out_dir / "partial" / "cs231n" / "optim.py")
    _append(out_dir / "syntax-error" / "cs231n" / "layers.py", SYNTAX_ERROR)
    _append(out_dir / "infinite-loop" / "cs231n" / "layers.py", INFINITE_LOOP)
    first = sorted((out_dir / "deleted-cell").glob("*.ipynb"))[0]
    nb = nbformat.read(first, as_version=4)
    tests = [i for i, c in enumerate(nb.cells)
             if c.get("metadata", {}).get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")]
    del nb.cells[tests[0]]
    nbformat.write(nb, first)
    (out_dir / "README.json").write_text(json.dumps({"deleted": f"{first.name}: cell {tests[0]}"}))
    return out_dir


def run_demo(course: Course, workers: int | None = None, budget: TimeBudget = DEMO) -> int:
    """Release, demo class, grading, feedback and export in course; prints the grade table and
    returns the exit code. The budget is the demo's (budget.DEMO), not a course's: fast-mode cells
    take at most a few seconds here, and the infinite loop costs two cells' and two cases' limits."""
    from autograder.intake.collect import collect
    from autograder.results.export import export
    from autograder.results.feedback import write_feedback
    from autograder.grading.grade import grade_all
    from autograder.release.build import build_release
    from autograder.results.summary import summarize

    start = time.time()
    print(f"course folder: {course.root}")
    release = build_release(course)
    print(f"1. release built: {release}")
    submissions = make_demo_class(course.source, release, course.root / "demo_submissions")
    print(f"2. demo class: {', '.join(DEMO_STUDENTS)} in {submissions}")
    refused = [c for c in collect(submissions, course) if c.error]
    print("3. grading (notebooks in fast mode on the offline digits; a bar per submission)")
    graded_at = time.time()
    results, failures = grade_all(course, students=list(DEMO_STUDENTS), workers=workers, force=True,
                                  budget=budget)
    print("\n".join(summarize(results, failures, time.time() - graded_at, refused)))
    feedback = write_feedback(course)
    grades = export(course, course.root / "export")
    print(f"\n4. feedback pages: {course.root / 'feedback'}/<student>/{course.assignment_id}/feedback.html"
          f" ({len(feedback)} written)")
    print(f"5. grades: {grades}; Gradescope results in {grades.parent / 'gradescope'}")
    print(f"   the class at a glance: {grades.parent / 'report.html'}")
    print("\n".join(f"   {line}" for line in where_to_enter(course_scale(course.source))))
    print(f"   the gradebook: {shown_url(course.db_url)}")
    print(f"done in {time.time() - start:.0f} s")
    return 1 if failures else 0
