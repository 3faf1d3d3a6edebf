"""python -m autograder: the instructor's one entry point.

Commands release, collect, grade, feedback, export, gradescope and demo work on the course folder
(course/, $CS231N_COURSE_DIR or --course) and its gradebook ($CS231N_DB_URL or --db-url, without
its password: docs/grading.md); self-study, grade-mine and compare on a self-learner's workspace
(docs/self-study.md). `python -m autograder COMMAND --help` gives each one's flags.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.budget import GRADESCOPE, TimeBudget
from autograder.config import Course, SecretOnCommandLine, check_command_line_url
from autograder.gradescope import VISIBILITIES

if TYPE_CHECKING:
    from autograder.intake.collect import Collected


def _course(args: argparse.Namespace) -> Course:
    """The course of the command line; its folder is made private (0700) when it is made here,
    since it holds every student's submission and the grades. One that other users may enter is
    used as it is, with a warning (once)."""
    course = Course.at(args.course, args.db_url, args.source)
    if not course.root.exists():
        course.root.parent.mkdir(parents=True, exist_ok=True)
        course.root.mkdir(mode=0o700)
    elif course.root.stat().st_mode & 0o005 and not getattr(args, "warned_open", False):
        args.warned_open = True
        print(f"warning: other users of this machine may enter {course.root}, which holds every student's "
              f"submission and the grades; make it private: chmod 700 {course.root}", file=sys.stderr)
    return course


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.release.build import build_release

    path = build_release(_course(args), out=args.out)
    print(f"release written to {path}")
    if args.exchange:
        from autograder.intake.exchange import release_to_exchange

        print(f"released to the exchange: {release_to_exchange(_course(args), args.exchange_root)}")
    return 0


def _report_collected(collected: list[Collected]) -> list[Collected]:
    from autograder.intake.collect import printable

    refused = [c for c in collected if c.error]
    for c in refused:
        print(f"  refused {printable(c.source.name)}: {printable(c.error)}", file=sys.stderr)
    print(f"collected {len(collected) - len(refused)} submissions" + (f", refused {len(refused)}" if refused else ""))
    return refused


def cmd_collect(args: argparse.Namespace) -> int:
    from autograder.intake.collect import collect
    from autograder.grading.lock import CourseBusy, course_lock

    course = _course(args)
    try:
        with course_lock(course.root):
            refused = _report_collected(collect(args.submissions, course))
    except CourseBusy as busy:
        print(f"not collecting: {busy}", file=sys.stderr)
        return 3
    return 1 if refused else 0


def _as_root(args: argparse.Namespace, course: Course) -> str:
    """The command line that runs this command again as root, with this venv's Python; sudo
    keeps no environment variables, so the course folder is given and the variables that name
    the gradebook and its password file are kept (by name: their values stay off the line)."""
    argv = list(args.argv)
    if "--course" not in argv and not any(a.startswith("--course=") for a in argv):
        argv[:0] = ["--course", str(course.root)]
    names = [name for name in ("CS231N_DB_URL", "PGPASSFILE") if os.environ.get(name)]
    keep = [f"--preserve-env={','.join(names)}"] if names else []
    return shlex.join(["sudo", *keep, sys.executable, "-m", "autograder", *argv])


def _refuse_without_root(refused: Exception, args: argparse.Namespace, course: Course) -> int:
    print(f"not grading: {refused}. For example:\n  {_as_root(args, course)}", file=sys.stderr)
    return 4


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder.results.export import export
    from autograder.results.feedback import write_feedback
    from autograder.grading.grade import NeedsRoot, grade_all, require_root
    from autograder.grading.lock import CourseBusy, course_lock
    from autograder.results.summary import summarize

    course = _course(args)
    try:
        if not args.scheduler:  # before anything is collected (with a scheduler: its workers, in grade_all)
            require_root()
        with course_lock(course.root):  # collect, grade and export as one run
            refused = []
            if args.submissions:
                from autograder.intake.collect import collect

                refused = _report_collected(collect(args.submissions, course))
            if args.exchange:
                from autograder.intake.exchange import collect_from_exchange

                refused += _report_collected(collect_from_exchange(course, args.exchange_root))
            start = time.time()
            results, failures = grade_all(course, workers=args.workers, scheduler=args.scheduler,
                                          force=args.force, dataset=args.dataset)
            print("\n".join(summarize(results, failures, time.time() - start, refused)))
            write_feedback(course)
            out = export(course, args.out or course.root / "export")
    except CourseBusy as busy:
        print(f"not grading: {busy}", file=sys.stderr)
        return 3
    except NeedsRoot as refused:
        return _refuse_without_root(refused, args, course)
    print(f"\ngrades: {out}\nfeedback: {course.root / 'feedback'}")
    return 1 if failures or refused else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from autograder.results.feedback import write_feedback

    written = write_feedback(_course(args), students=args.student)
    for sid, path in written.items():
        print(f"{sid}: {path}")
    if args.exchange:
        from autograder.intake.exchange import release_feedback_to_exchange

        sent = release_feedback_to_exchange(_course(args), written, args.exchange_root)
        print(f"feedback released to the exchange for {len(sent)} students: {' '.join(sent)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autograder.results.export import export

    course = _course(args)
    print(export(course, args.out or course.root / "export"))
    return 0


def cmd_gradescope(args: argparse.Namespace) -> int:
    from autograder.gradescope import build_autograder_zip

    from autograder.results.scale import course_scale, where_to_enter

    course = _course(args)
    path = build_autograder_zip(course, args.out, dataset=args.dataset, budget=_budget(args, GRADESCOPE),
                                hidden_visibility=args.hidden_visibility, torch=args.torch)
    print(f"{path}: upload it as the assignment's autograder on Gradescope (Ubuntu 22.04 image)")
    print("\n".join(where_to_enter(course_scale(course.source))))
    return 0


def _seconds(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"a whole number of seconds above 0, not {text!r}")
    return int(text)


def _timeout_flags(parser: argparse.ArgumentParser, default: TimeBudget, why: str = "") -> None:
    parser.add_argument("--cell-timeout", type=_seconds, default=None,
                        help=f"seconds per notebook cell (default {default.cell}{why})")
    parser.add_argument("--judge-timeout", type=_seconds, default=None,
                        help=f"seconds per function case (default {default.judge_case})")


def _budget(args: argparse.Namespace, default: TimeBudget) -> TimeBudget:
    """default with the limits the command line gives (--cell-timeout, --judge-timeout)."""
    return default.with_limits(cell=args.cell_timeout, judge_case=args.judge_timeout)


def _exchange_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--exchange", action="store_true", help=f"{what} nbgrader's exchange (JupyterHub)")
    parser.add_argument("--exchange-root", help="the exchange folder (default: nbgrader's configuration "
                                                "or $CS231N_EXCHANGE)")


def cmd_demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo
    from autograder.grading.grade import NeedsRoot, require_root

    try:
        require_root()
    except NeedsRoot as refused:
        return _refuse_without_root(refused, args, _course(args))
    return run_demo(_course(args), workers=args.workers)


def cmd_self_study(args: argparse.Namespace) -> int:
    from autograder.selfstudy.workspace import main as self_study

    return self_study(args.workspace, lab=not args.no_lab)


def cmd_grade_mine(args: argparse.Namespace) -> int:
    from autograder.selfstudy.grade_mine import main as grade_mine

    return grade_mine(args.workspace, budget=_budget(args, TimeBudget()))


def cmd_compare(args: argparse.Namespace) -> int:
    from autograder.selfstudy.compare import main as compare

    return compare(args.workspace, args.task)


def _self_study_commands(sub: argparse._SubParsersAction) -> None:
    from autograder.selfstudy.workspace import DEFAULT

    p = sub.add_parser("self-study", help="a workspace of the student release with its own set-up, then JupyterLab")
    p.add_argument("workspace", nargs="?", type=Path, default=DEFAULT, help=f"its folder (default {DEFAULT})")
    p.add_argument("--no-lab", action="store_true", help="make or find the workspace, do not start JupyterLab")
    p.set_defaults(run=cmd_self_study)
    p = sub.add_parser("grade-mine", help="grade one self-study workspace with the hidden tests, as your own user")
    p.add_argument("workspace", type=Path)
    _timeout_flags(p, TimeBudget())
    p.set_defaults(run=cmd_grade_mine)
    p = sub.add_parser("compare", help="a task's reference beside your code, once its checks pass")
    p.add_argument("workspace", type=Path)
    p.add_argument("task", nargs="?", default="")
    p.set_defaults(run=cmd_compare)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    parser.add_argument("--course", help="the course folder (default: course/ or $CS231N_COURSE_DIR)")
    parser.add_argument("--db-url", help="the gradebook's SQLAlchemy URL, without its password: that goes in "
                        "~/.pgpass or $PGPASSFILE (default: $CS231N_DB_URL, else SQLite in the course folder)")
    parser.add_argument("--source", help="the folder holding assignments/<id>/ sources (default assignments/)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="build the student release")
    p.add_argument("--out", help="also copy the release to this new folder")
    _exchange_flags(p, "then release it to")
    p.set_defaults(run=cmd_release)
    p = sub.add_parser("collect", help="take submissions from a folder of per-student folders or zips")
    p.add_argument("submissions", type=Path)
    p.set_defaults(run=cmd_collect)
    p = sub.add_parser("grade", help="(collect,) grade, write feedback and grades")
    p.add_argument("submissions", nargs="?", type=Path, help="collect from here first")
    p.add_argument("--out", type=Path, help="where grades.csv and per-student results go (default course/export)")
    p.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    p.add_argument("--scheduler", help="address of a Dask scheduler to grade on instead")
    p.add_argument("--force", action="store_true", help="grade again what was already graded")
    p.add_argument("--dataset", default="digits", help="dataset the notebooks run on (default digits)")
    _exchange_flags(p, "collect first from")
    p.set_defaults(run=cmd_grade)
    p = sub.add_parser("feedback", help="write the feedback pages")
    p.add_argument("--student", action="append", help="only these students")
    _exchange_flags(p, "then release the pages through")
    p.set_defaults(run=cmd_feedback)
    p = sub.add_parser("export", help="write grades.csv and Gradescope results")
    p.add_argument("--out", type=Path)
    p.set_defaults(run=cmd_export)
    p = sub.add_parser("gradescope", help="write autograder.zip, Gradescope's autograder for this assignment")
    p.add_argument("--out", type=Path, required=True, help="the folder to write autograder.zip into")
    p.add_argument("--dataset", default="digits", help="dataset the notebooks run on (default digits)")
    _timeout_flags(p, GRADESCOPE, " (Gradescope gives a whole run 10 minutes unless raised in its Autograder Settings)")
    p.add_argument("--hidden-visibility", default="after_published", choices=VISIBILITIES,
                   help="when students see tests holding hidden material")
    p.add_argument("--torch", action="store_true", help="install PyTorch in Gradescope's image and grade the "
                   "PyTorch notebook there (without it, that notebook carries no points there)")
    p.set_defaults(run=cmd_gradescope)
    p = sub.add_parser("demo", help="release, a demo class, grading, feedback: the whole course")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(run=cmd_demo)
    _self_study_commands(sub)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if args.db_url:
            check_command_line_url(args.db_url)
    except SecretOnCommandLine as refused:
        print(f"{args.command}: {refused}", file=sys.stderr)
        return 2
    from autograder.intake.exchange import ExchangeError
    from autograder.release.build import ReleaseError

    try:
        return args.run(args)
    except (ExchangeError, ReleaseError) as error:  # their messages say what failed and what to do
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
