"""How long the processes of a grading run outlive a kill -9 of its coordinator.

    python -m bench.kill9 [--kills 5] [--workers 2] [--verbose]

Grades the toy course (tests/course_fixtures.py) with `python -m autograder grade --force`,
waits until a notebook kernel runs, kills the coordinator with SIGKILL, then looks at every
process the run had started (its descendants just before the kill, and any of theirs) every
50 ms and prints when each one went, with its command line. Needs root (grading does).
Results go in docs/grading.md ("kill -9").
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from course_fixtures import make_small_class, make_toy_source  # noqa: E402
from process_tree import alive, descendants, kernels, processes  # noqa: E402

from autograder.intake.collect import collect  # noqa: E402
from autograder.config import Course  # noqa: E402
from autograder.release.build import build_release  # noqa: E402

POLL = 0.05
PATIENCE = 60  # seconds to look for leftovers after a kill


def toy_course(folder):
    course = Course(root=folder / "course", db_url=f"sqlite:///{folder / 'course' / 'gradebook.db'}",
                    source_root=make_toy_source(folder / "src"))
    release = build_release(course)
    make_small_class(course.source, release, folder / "subs", reference=("ref1", "ref2", "ref3"),
                     starter=("st1", "st2", "st3"))
    assert not [c.error for c in collect(folder / "subs", course) if c.error]
    return course


def kill_once(course, workers):
    """Start a run, kill its coordinator while a kernel runs; returns [(seconds, cmdline)] of
    each process of the run, when it went (None: still there after PATIENCE seconds)."""
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    run = subprocess.Popen([sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade",
                            "--force", "--workers", str(workers)], cwd=ROOT, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, seen = time.monotonic() + 600, set()
    while time.monotonic() < deadline and run.poll() is None:
        table = processes()
        tree = descendants(run.pid, table)
        running = kernels(tree, table)
        if running & seen:  # the same kernel at two looks
            break
        seen = running
        time.sleep(POLL)
    else:
        run.kill()
        run.wait()
        raise RuntimeError("no kernel ran before the run ended")
    os.kill(run.pid, signal.SIGKILL)
    killed = time.monotonic()
    watched = {pid: table[pid] for pid in tree}
    gone = {}
    while time.monotonic() - killed < PATIENCE and len(gone) < len(watched):
        table = processes()
        for pid in {p for known in [run.pid, *watched] for p in descendants(known, table)}:
            watched.setdefault(pid, table[pid])
        for pid, process in watched.items():
            if pid not in gone and not alive(pid, process.started, table):
                gone[pid] = time.monotonic() - killed
        time.sleep(POLL)
    run.wait()
    for pid in set(watched) - set(gone):  # left behind: end them before the next run
        if alive(pid, watched[pid].started):
            os.kill(pid, signal.SIGKILL)
    return sorted(((gone.get(pid), process.cmdline) for pid, process in watched.items()),
                  key=lambda item: float("inf") if item[0] is None else item[0])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.kill9", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print every process, not only the last")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("python -m bench.kill9 grades, which needs root")
    with tempfile.TemporaryDirectory(prefix="kill9-") as folder:
        course = toy_course(Path(folder))
        lasts = []
        for number in range(args.kills):
            went = kill_once(course, args.workers)
            last = went[-1][0]
            lasts.append(float("inf") if last is None else last)
            print(f"kill {number + 1}: {len(went)} processes, the last gone after "
                  f"{f'more than {PATIENCE} s' if last is None else f'{last:.2f} s'}: {went[-1][1][:150]}")
            for seconds, cmdline in went if args.verbose else []:
                print(f"   {'-' if seconds is None else f'{seconds:6.2f}'}  {cmdline[:150]}")
        print(f"median of {len(lasts)}: {statistics.median(lasts):.2f} s; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
