"""Grading throughput: plain serial `nbgrader autograde` against `python -m autograder grade
--workers 2`, on the same submissions, in one run.

    python -m bench.grading [--students 20] [--workers 2] [--notebook all]

A submission is the whole assignment by default (the six notebooks of assignments/a2 and the
package, as students hand it in; about a minute per reference submission in fast mode on the
digits); `--notebook Dropout` grades one notebook of it, `--notebook toy` the tiny notebook of
tests/course_fixtures.py (nothing but per-submission overhead). Half the class are reference
submissions, half untouched starters. Plain nbgrader grades them one
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

from autograder.intake.collect import collect  # noqa: E402
from autograder.config import Course  # noqa: E402
from autograder.release.build import build_release  # noqa: E402
from course_fixtures import make_small_class, make_toy_source  # noqa: E402


def make_source(tmp, notebook):
    """A source root holding a2/ with the one notebook to grade."""
    if notebook == "toy":
        return make_toy_source(tmp / "src")
    folder = tmp / "src" / "a2"
    folder.mkdir(parents=True, exist_ok=True)
    sources = ROOT / "assignments" / "a2"
    for path in sorted(sources.glob("*.ipynb")) if notebook == "all" else [sources / f"{notebook}.ipynb"]:
        if not path.is_file():
            raise SystemExit(f"no notebook {path.name} in {sources}: give one of "
                             f"{sorted(p.stem for p in sources.glob('*.ipynb'))}, all or toy")
        shutil.copyfile(path, folder / path.name)
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


def give_compiled_layers(course):
    """Put the built fast layers into every collected submission of course.

    Students hand in .py files only, so under plain nbgrader a submission's notebooks would
    import cs231n without its compiled fast layers and train on the naive ones (minutes per
    notebook); ours lays the instructor's build over every submission. Plain nbgrader gets the
    build too, so that the benchmark compares the pipelines, not the extension."""
    built = sorted((ROOT / "cs231n").glob("fast_layers*.so"))
    if not built:
        raise SystemExit("the fast layers are not built: run `make build` first")
    for folder in (course.root / "submitted").glob(f"*/{course.assignment_id}/cs231n"):
        for path in built:
            shutil.copyfile(path, folder / path.name)


def busy_cores():
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat); None where unreadable."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def timed(run, *args):
    """(seconds, average busy cores of the machine meanwhile) of run(*args)."""
    before, start = busy_cores(), time.perf_counter()
    run(*args)
    seconds, after = time.perf_counter() - start, busy_cores()
    if before is None or after is None or after[1] == before[1]:
        return seconds, float("nan")
    return seconds, os.cpu_count() * (after[0] - before[0]) / (after[1] - before[1])


def plain_nbgrader(course):
    """nbgrader autograde of every student, serially, as nbgrader does it."""
    env = {**os.environ, "CS231N_DATASET": "digits", "CS231N_FAST": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # nbgrader's default ignore list: the course's own skips *.so (ours lays the instructor's
    # build over each submission instead), which would leave plain nbgrader without fast layers
    ignore = [f"--CourseDirectory.ignore={p}" for p in (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")]
    run_or_explain([sys.executable, "-m", "nbgrader", "autograde", course.assignment_id, "--force",
                    f"--CourseDirectory.root={course.root}", f"--CourseDirectory.db_url={course.db_url}",
                    f"--CourseDirectory.source_directory={course.source_root}", *ignore], env)


def ours(course, workers):
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    run_or_explain([sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade",
                    "--workers", str(workers)], env)


def run_or_explain(command, env):
    """Run command from the project root; on failure stop, showing the end of what it printed."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[1:4])} ... failed (exit {done.returncode}):\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--notebook", default="all",
                        help="all (the whole assignment), one notebook of assignments/a2, or toy")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        plain_course = make_course(tmp, "plain", args.students, args.notebook)
        give_compiled_layers(plain_course)
        our_course = make_course(tmp, "ours", args.students, args.notebook)
        # nbgrader needs the assignment in its gradebook; the release step recorded it
        print(f"grading {args.students} submissions with plain nbgrader, then ours ...", flush=True)
        plain_s, plain_cores = timed(plain_nbgrader, plain_course)
        print(f"  plain nbgrader done in {plain_s:.1f} s", flush=True)
        ours_s, our_cores = timed(ours, our_course, args.workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.students
    plain_rate, our_rate = 60 * n / plain_s, 60 * n / ours_s
    what = "the whole assignment" if args.notebook == "all" else f"the {args.notebook} notebook"
    print(f"grading {n} submissions of {what} on {os.cpu_count()} cores")
    print(f"  plain nbgrader autograde, serial:      {plain_s:7.1f} s  {plain_rate:6.1f} submissions/min"
          f"  {plain_cores:.2f} cores busy")
    print(f"  python -m autograder grade --workers {args.workers}: {ours_s:7.1f} s  {our_rate:6.1f} submissions/min"
          f"  {our_cores:.2f} cores busy  (also runs the function-level judge)")
    print(f"  ratio ours/plain: {our_rate / plain_rate:.2f}x (target >= 1.8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
