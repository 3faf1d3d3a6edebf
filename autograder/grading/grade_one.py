"""Grade one student, in a worker, touching only its own scratch folder: assemble the package, judge
its functions, run `nbgrader autograde` in the sandbox, and return a GradeResult (scores and
grader-made messages) or a NotGraded saying why the grader failed, never a score.
docs/grading.md, "Inside one job".
"""
from __future__ import annotations

import hashlib
import os
import resource
import shutil
import tempfile
import time
import traceback
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from pathlib import Path

from cs231n.tasks import TASKS_BY_FILE

from autograder.results.causes import note_stops
from autograder.config import ROOT
from autograder.budget import TimeBudget
from autograder.results.evidence import confirm_with_functions, mark_set_aside, read_notebook_grades, recheck_names
from autograder.grading.failures import (kernel_death_failure, nbgrader_failure, nbgrader_killed, reason_for,
                                         run_not_set_up)
from autograder.notebooks.inert import make_inert
from autograder.sandbox.bubblewrap import isolation_mode, self_mode
from autograder.notebooks.optional import set_aside_unrunnable
from autograder.notebooks.preload import EVERY_MODULE
from autograder.notebooks.unreadable import set_aside_unreadable
from autograder.results.records import FunctionCase, GradeResult, MemoryPeaks, NotGraded, Recheck, Seconds

if TYPE_CHECKING:
    from autograder.notebooks.kernel_deaths import Death


# What nbgrader autograde leaves out when it copies a submission into autograded/: the course's
# list (nbgrader_config.py) also leaves out *.so, to keep builds out of the release, but the
# package graded here is ours (assemble_package) and its compiled fast layers must reach the
# kernel: without them every ConvNet in the notebooks trains on the naive layers.
GRADING_IGNORE = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")


@dataclass(frozen=True)
class GradeJob:
    """Everything a worker needs to grade one student; paths as strings, so it pickles anywhere."""

    student_id: str
    assignment_id: str
    submitted_dir: str
    base_package: str
    template_db: str
    source_root: str
    scratch_root: str
    _: KW_ONLY  # the rest by name: a limit given in a path's place would be graded as nonsense
    dataset: str = "digits"
    course_root: str = ""
    digest: str = ""  # of the submission when the coordinator made the job
    budget: TimeBudget = TimeBudget()
    preload: tuple[str, ...] = EVERY_MODULE  # what the run's kernel zygote imports (notebooks.preload)



def submission_digest(submitted_dir: str | Path) -> str:
    """sha256 over the names and bytes of a submission's files, to notice a resubmission."""
    digest = hashlib.sha256()
    for path in sorted(Path(submitted_dir).rglob("*")):
        if path.is_file() and path.name != "timestamp.txt":
            digest.update(path.relative_to(submitted_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def assemble_package(base_package: str | Path, submitted_dir: str | Path, dest: str | Path) -> list[str]:
    """dest/cs231n: the given code of base_package with the student's task files over it.

    Returns the list of task files the student did not submit (their tasks stay stubbed).
    """
    dest_pkg = Path(dest) / "cs231n"
    shutil.copytree(base_package, dest_pkg)
    missing = []
    for name in TASKS_BY_FILE:
        student_file = Path(submitted_dir) / "cs231n" / name
        if student_file.is_file() and not student_file.is_symlink():
            shutil.copyfile(student_file, dest_pkg / name)
        else:
            missing.append(f"cs231n/{name}")
    return missing


def _tail(path: str | Path, size: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _notebooks_in(report: Path) -> list[str]:
    return sorted(set(report.read_text().splitlines())) if report.exists() else []


class AutogradeOutcome(NamedTuple):
    """What run_nbgrader_autograde learnt: ok (exit 0), the log's tail, the notebooks that ran out
    of their budget, those whose kernel filled the run's tmpfs, and whether nbgrader itself was
    killed at the grader's own time limit (a fact of ours: never read back from the log, whose
    text the submission's file names and notebooks reach); the most memory nbgrader's own cgroup
    held (bytes, None without one)."""

    ok: bool
    log: str
    out_of_time: list[str]
    out_of_space: list[str]
    over_limit: bool
    nbgrader_peak: int | None = None
    deaths: tuple[Death, ...] = ()  # of every kernel that died
    killed: str = ""  # why nbgrader was killed from outside the student's limits (failures.nbgrader_killed)


def run_nbgrader_autograde(job: GradeJob, private_root: str | Path) -> AutogradeOutcome:
    """nbgrader autograde of one student in a private course; returns an AutogradeOutcome.

    nbgrader runs as the grader, forked from this worker's zygote (autograder.notebooks.nbgrader_zygote:
    nbgrader is imported once per worker, not once per student); every notebook's kernel runs
    in the student run's bubblewrap sandbox (autograder.notebooks.run), with bounded outputs; a
    cell past its timeout or its notebook's budget is ended by killing the kernel, and whatever
    the run started dies with it. The run's own limit (the notebooks' budgets and budget.run_slack) is
    the grader's last resort, never reached by a student's code."""
    from autograder.notebooks import kernel_deaths
    from autograder.notebooks.run import NBGRADER_MEMORY_MB, preprocessor_args, sandboxed_nbgrader
    from autograder.notebooks.nbgrader_zygote import run_nbgrader

    private_root = Path(private_root)
    db_url = f"sqlite:///{private_root / 'gradebook.db'}"
    run_dir = Path(tempfile.mkdtemp(prefix="nbgrader-run-", dir=private_root.parent))
    nbgrader_args = [
        "autograde", job.assignment_id, "--student", job.student_id,
        "--force", f"--CourseDirectory.root={private_root}", f"--CourseDirectory.db_url={db_url}",
        f"--CourseDirectory.source_directory={job.source_root}",
        *(f"--CourseDirectory.ignore={pattern}" for pattern in GRADING_IGNORE),
        # nbgrader leaves autograded notebooks 0444: root rewrites them anyway, the caller in self mode could not
        *(["--Autograde.permissions=644"] if self_mode() else []),
        *preprocessor_args()]
    kernel_env = {"CS231N_DATASET": job.dataset, "CS231N_FAST": "1", "MPLBACKEND": "Agg"}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CS231N_DB_URL", "CS231N_COURSE_DIR")}
    env.update(kernel_env)
    log, overruns, filled = run_dir / "nbgrader.log", run_dir / "timed-out.txt", run_dir / "filled.txt"
    died = run_dir / "deaths.txt"
    notebooks = max(1, len(list((Path(job.source_root) / job.assignment_id).glob("*.ipynb"))))
    timeout = job.budget.nbgrader_run(notebooks)
    with sandboxed_nbgrader(nbgrader_args, run_dir, env=kernel_env, budget=job.budget, preload=job.preload,
                            overrun_report=overruns, full_report=filled, death_report=died) as run:
        returncode, timed_out = run_nbgrader(run, cwd=ROOT, log_path=log, env=env, budget=job.budget,
                                             notebooks=notebooks)
    out_of_time, out_of_space, deaths = _notebooks_in(overruns), _notebooks_in(filled), tuple(kernel_deaths.read(died))
    own_limit = kernel_deaths.at_limit_of(run.peak_bytes, NBGRADER_MEMORY_MB << 20)
    if timed_out:
        return AutogradeOutcome(False, f"nbgrader autograde ran longer than {timeout} s: {_tail(log, 500)}",
                           out_of_time, out_of_space, True, run.peak_bytes, deaths)
    if run.out_of_memory and own_limit:  # its own limit: what this student's kernels sent it, so the student's
        return AutogradeOutcome(False, f"nbgrader ran out of the {NBGRADER_MEMORY_MB} MiB it may use "
                                "for one student, holding what this student's notebooks sent it; the notebooks it "
                                f"had not finished score 0\n{_tail(log)}", out_of_time, out_of_space, False, run.peak_bytes, deaths)
    return AutogradeOutcome(returncode == 0, _tail(log), out_of_time, out_of_space, False, run.peak_bytes, deaths,
                            nbgrader_killed(returncode, run.out_of_memory, own_limit)
                            or run_not_set_up(returncode, _tail(log)) or "")


def grade_submission(job: GradeJob) -> GradeResult | NotGraded:
    """Grade one student: a GradeResult, or NotGraded when the grader failed (see
    autograder.grading.failures). Never raises for a grader-side failure: the coordinator gets a
    NotGraded saying why."""
    scratch = ""
    try:
        scratch = tempfile.mkdtemp(prefix=f"grade-{job.student_id}-", dir=job.scratch_root)
        return _grade_in(job, Path(scratch))
    except Exception as error:  # noqa: BLE001 - the grader's failure, reported as not graded
        return NotGraded(job.student_id, job.digest, reason_for(error, job.scratch_root),
                         log=traceback.format_exc()[-4000:], scratch=scratch)


def _grade_in(job: GradeJob, scratch: Path) -> GradeResult | NotGraded:
    started = time.time()
    private = scratch / "course"
    student_dir = private / "submitted" / job.student_id / job.assignment_id
    student_dir.mkdir(parents=True)
    for nb in Path(job.submitted_dir).glob("*.ipynb"):
        shutil.copyfile(nb, student_dir / nb.name)
    for extra in ("timestamp.txt",):
        if (Path(job.submitted_dir) / extra).exists():
            shutil.copyfile(Path(job.submitted_dir) / extra, student_dir / extra)
    # optional notebooks whose package is missing here, and notebooks that cannot be read
    set_aside = set_aside_unrunnable(student_dir) + set_aside_unreadable(student_dir)
    missing = assemble_package(job.base_package, job.submitted_dir, student_dir)
    judge_copy = scratch / "judge"
    shutil.copytree(student_dir / "cs231n", judge_copy / "cs231n")
    shutil.copyfile(job.template_db, private / "gradebook.db")

    # a JudgeError is ours, not the student's: it makes the student not graded
    from autograder.judge import judge_package, recheck_package

    source_dir = Path(job.source_root) / job.assignment_id
    judged_cases = judge_package(judge_copy, budget=job.budget)
    functions = [FunctionCase(c.task, c.case, c.points, c.max_points, c.passed, c.message) for c in judged_cases]
    rechecked = recheck_package(judge_copy, recheck_names(source_dir), budget=job.budget)
    rechecks = [Recheck(r.name, r.passed, r.message) for r in rechecked]
    judged = time.time()

    ok, log, timed_out, out_of_space, over_limit, nbgrader_peak, deaths, killed = run_nbgrader_autograde(job, private)
    make_inert(private / "autograded" / job.student_id / job.assignment_id)  # before any page shows it
    digest = submission_digest(job.submitted_dir)
    why = nbgrader_failure(0 if ok else 1, over_limit, scratch) or killed or kernel_death_failure(deaths)
    if why:
        return NotGraded(job.student_id, digest, why, log=log, scratch=str(scratch))
    notebooks = read_notebook_grades(private, f"sqlite:///{private / 'gradebook.db'}",
                                     job.assignment_id, job.student_id)
    notebooks, before_check = confirm_with_functions(notebooks, functions, source_dir, rechecks)
    notebooks = note_stops(notebooks, private / "autograded" / job.student_id / job.assignment_id,
                           job.budget)  # where each notebook went wrong, for the feedback's first box
    notebooks = mark_set_aside(notebooks, {s.notebook: s.reason for s in set_aside})
    return GradeResult(
        student_id=job.student_id, digest=digest, notebooks=notebooks,
        notebook_score_before_check=before_check, functions=functions, rechecks=rechecks,
        missing_files=missing, nbgrader_ok=ok, nbgrader_log="" if ok else log,
        timed_out=timed_out, out_of_space=out_of_space, kernel_died=sorted({d.notebook for d in deaths}), isolation=isolation_mode(),
        seconds=Seconds(judge=round(judged - started, 2), notebooks=round(time.time() - judged, 2)),
        memory_mb=MemoryPeaks(nbgrader=nbgrader_peak and round(nbgrader_peak / 2**20, 1),
                              worker=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)),
        autograded_dir=str(private / "autograded" / job.student_id / job.assignment_id), scratch=str(scratch))
