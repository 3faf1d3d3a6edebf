"""Grade one student; runs in a worker and touches only its own scratch folder.

1. assemble the package to grade: the instructor's given code (and compiled fast layers) with the
   student's own files that hold tasks (cs231n.tasks.TASKS_BY_FILE) laid over it, so a student
   can change their functions but not the Solver, the checks or the extension;
2. judge the functions (autograder.judge) on a pristine copy of that package, outside the
   student's process;
3. run `nbgrader autograde` for this one student in a private course folder whose gradebook is a
   copy of a template holding only the assignment, with deleted test cells restored and every
   cell under a timeout;
4. return a GradeResult (autograder.results): every grade cell's score, a short error line per
   failed cell (never its source), the judge's results, timings; or a NotGraded saying why,
   when the grader failed (autograder.failures), never a score.
"""
import hashlib
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from cs231n.tasks import TASKS_BY_FILE

from .config import ROOT
from .evidence import confirm_with_functions, read_notebook_grades, withhold_hidden_tests
from .failures import nbgrader_failure, reason_for
from .results import GradeResult, NotGraded

NOTEBOOK_TIMEOUT = 1800  # seconds for the whole nbgrader run of one student
NBGRADER_TIMED_OUT = "nbgrader autograde ran longer than"  # how run_nbgrader_autograde's log says so
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
    dataset: str = "digits"
    cell_timeout: int = 300
    judge_timeout: int = 20
    course_root: str = ""
    digest: str = ""  # of the submission when the coordinator made the job


def submission_digest(submitted_dir):
    """sha256 over the names and bytes of a submission's files, to notice a resubmission."""
    digest = hashlib.sha256()
    for path in sorted(Path(submitted_dir).rglob("*")):
        if path.is_file() and path.name != "timestamp.txt":
            digest.update(path.relative_to(submitted_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def assemble_package(base_package, submitted_dir, dest):
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


def _kernel_hide(job, private_root):
    """What a notebook's kernel must not see: everything of the grader's but its own work copy."""
    places = [job.source_root, job.course_root, job.scratch_root, private_root, job.submitted_dir,
              Path(job.template_db).parent, Path(job.base_package).parent]
    return [str(p) for p in places if p]


def _tail(path, size=4000):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def run_nbgrader_autograde(job, private_root):
    """nbgrader autograde of one student in a private course; returns (ok, log tail).

    nbgrader runs as the grader, forked from this worker's zygote (autograder.nbgrader_zygote:
    nbgrader is imported once per worker, not once per student); every notebook's kernel runs
    in the judge's sandbox (autograder.kernel_sandbox: own user, limits, no network, hidden
    folders), with bounded outputs, and whatever the kernels leave behind dies with the run."""
    from . import kernel_sandbox
    from .nbgrader_zygote import run_nbgrader

    private_root = Path(private_root)
    db_url = f"sqlite:///{private_root / 'gradebook.db'}"
    run_dir = Path(tempfile.mkdtemp(prefix="nbgrader-run-", dir=private_root.parent))
    nbgrader_args = [
        "autograde", job.assignment_id, "--student", job.student_id,
        "--force", f"--CourseDirectory.root={private_root}", f"--CourseDirectory.db_url={db_url}",
        f"--CourseDirectory.source_directory={job.source_root}", f"--Execute.timeout={job.cell_timeout}",
        *(f"--CourseDirectory.ignore={pattern}" for pattern in GRADING_IGNORE),
        *kernel_sandbox.preprocessor_args()]
    kernel_env = {"CS231N_DATASET": job.dataset, "CS231N_FAST": "1", "MPLBACKEND": "Agg"}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CS231N_DB_URL", "CS231N_COURSE_DIR")}
    env.update(kernel_env)
    log = run_dir / "nbgrader.log"
    with kernel_sandbox.sandboxed_nbgrader(nbgrader_args, run_dir, hide=_kernel_hide(job, private_root),
                                           env=kernel_env) as run:
        returncode, timed_out = run_nbgrader(run, cwd=ROOT, log_path=log, timeout=NOTEBOOK_TIMEOUT, env=env)
    if timed_out:
        return False, f"nbgrader autograde ran longer than {NOTEBOOK_TIMEOUT} s: {_tail(log, 500)}"
    return returncode == 0, _tail(log)


def grade_submission(job):
    """Grade one student: a GradeResult, or NotGraded when the grader failed (see
    autograder.failures). Never raises for a grader-side failure: the coordinator gets a
    NotGraded saying why."""
    scratch = ""
    try:
        scratch = tempfile.mkdtemp(prefix=f"grade-{job.student_id}-", dir=job.scratch_root)
        return _grade_in(job, Path(scratch))
    except Exception as error:  # noqa: BLE001 - the grader's failure, reported as not graded
        return NotGraded(job.student_id, job.digest, reason_for(error, job.scratch_root),
                         log=traceback.format_exc()[-4000:], scratch=scratch)


def _grade_in(job, scratch):
    started = time.time()
    private = scratch / "course"
    student_dir = private / "submitted" / job.student_id / job.assignment_id
    student_dir.mkdir(parents=True)
    for nb in Path(job.submitted_dir).glob("*.ipynb"):
        shutil.copyfile(nb, student_dir / nb.name)
    for extra in ("timestamp.txt",):
        if (Path(job.submitted_dir) / extra).exists():
            shutil.copyfile(Path(job.submitted_dir) / extra, student_dir / extra)
    missing = assemble_package(job.base_package, job.submitted_dir, student_dir)
    judge_copy = scratch / "judge"
    shutil.copytree(student_dir / "cs231n", judge_copy / "cs231n")
    shutil.copyfile(job.template_db, private / "gradebook.db")

    # a JudgeError is ours, not the student's: it makes the student not graded
    from .judge import judge_package

    hide = [job.course_root] if job.course_root else []
    functions = [asdict(r) for r in judge_package(judge_copy, timeout_per_case=job.judge_timeout, hide=hide)]
    judged = time.time()

    ok, log = run_nbgrader_autograde(job, private)
    digest = submission_digest(job.submitted_dir)
    why = nbgrader_failure(0 if ok else 1, log.startswith(NBGRADER_TIMED_OUT), scratch)
    if why:
        return NotGraded(job.student_id, digest, why, log=log, scratch=str(scratch))
    notebooks = read_notebook_grades(private, f"sqlite:///{private / 'gradebook.db'}",
                                     job.assignment_id, job.student_id)
    before_check = confirm_with_functions(notebooks, functions, Path(job.source_root) / job.assignment_id)
    withhold_hidden_tests(notebooks, Path(job.source_root) / job.assignment_id)
    return GradeResult(
        student_id=job.student_id, digest=digest, notebooks=notebooks,
        notebook_score_before_check=before_check, functions=functions, missing_files=missing,
        nbgrader_ok=ok, nbgrader_log="" if ok else log,
        seconds={"judge": round(judged - started, 2), "notebooks": round(time.time() - judged, 2)},
        autograded_dir=str(private / "autograded" / job.student_id / job.assignment_id), scratch=str(scratch))
