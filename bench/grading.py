"""Grading throughput: plain serial `nbgrader autograde` against `python -m autograder grade
--workers 2`, on the same submissions, in one run.

    python -m bench.grading [--students 20] [--workers 2] [--notebook Dropout]

The assignment is one real notebook of assignments/a2 (Dropout by default: about half a minute
in fast mode), so that the run takes minutes, not hours, yet each submission costs what a real
one does; `--notebook toy` uses the tiny notebook of tests/course_fixtures.py instead. Half
the class are reference submissions, half untouched starters. Plain nbgrader grades them one
after another in one process; ours grades them on a pool of workers and also runs the
function-level judge for every submission (more work per submission, not less).
Prints submissions per minute for each and the ratio.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from autograder.collect import collect  # noqa: E402
from autograder.config import Course  # noqa: E402
from autograder.release import build_release  # noqa: E402
from course_fixtures import make_small_class, make_toy_source  # noqa: E402


def make_source(tmp, notebook):
    """A source root holding a2/ with the one notebook to grade."""
    if notebook == "toy":
        return make_toy_source(tmp / "src")
    folder = tmp / "src" / "a2"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "assignments" / "a2" / f"{notebook}.ipynb", folder / f"{notebook}.ipynb")
    return tmp / "src"


def make_course(tmp, name, students, notebook):
    src = make_source(tmp, notebook)
    course = Course(root=tmp / name, db_url=f"sqlite:///{tmp / name / 'gradebook.db'}", source_root=src)
    release = build_release(course)
    half = students // 2
    subs = tmp / f"subs-{name}"
    make_small_class(course.source, release, subs, reference=[f"ref{i:02d}" for i in range(half)],
                     starter=[f"st{i:02d}" for i in range(students - half)])
    refused = [c for c in collect(subs, course) if c.error]
    assert not refused, refused
    return course


def plain_nbgrader(course):
    """nbgrader autograde of every student, serially, as nbgrader does it; returns seconds."""
    env = {**os.environ, "CS231N_DATASET": "digits", "CS231N_FAST": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", course.assignment_id, "--force",
                    f"--CourseDirectory.root={course.root}", f"--CourseDirectory.db_url={course.db_url}",
                    f"--CourseDirectory.source_directory={course.source_root}"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def ours(course, workers):
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade",
                    "--workers", str(workers)], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--notebook", default="Dropout", help="a notebook of assignments/a2, or toy")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        plain_course = make_course(tmp, "plain", args.students, args.notebook)
        our_course = make_course(tmp, "ours", args.students, args.notebook)
        # nbgrader needs the assignment in its gradebook; the release step recorded it
        plain_s = plain_nbgrader(plain_course)
        ours_s = ours(our_course, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.students
    plain_rate, our_rate = 60 * n / plain_s, 60 * n / ours_s
    print(f"grading {n} submissions of the {args.notebook} notebook on {os.cpu_count()} cores")
    print(f"  plain nbgrader autograde, serial:      {plain_s:7.1f} s  {plain_rate:6.1f} submissions/min")
    print(f"  python -m autograder grade --workers {args.workers}: {ours_s:7.1f} s  {our_rate:6.1f} submissions/min"
          "  (also runs the function-level judge)")
    print(f"  ratio ours/plain: {our_rate / plain_rate:.2f}x (target >= 1.8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
