"""Grade submissions: the student's own package, the notebooks by nbgrader, the functions by the
judge, one writer to the gradebook, resumable, on a process pool or a Dask cluster.

The pipeline for one student (`grade_submission`, which runs in a worker and touches only its
own scratch folder):
1. assemble the package to grade: the instructor's given code (and compiled fast layers) with the
   student's own files that hold tasks (cs231n.tasks.TASKS_BY_FILE) laid over it, so a student
   can change their functions but not the Solver, the checks or the extension;
2. judge the functions (autograder.judge) on a pristine copy of that package, outside the
   student's process;
3. run `nbgrader autograde` for this one student in a private course folder whose gradebook is a
   copy of a template holding only the assignment, with deleted test cells restored and every
   cell under a timeout;
4. return plain data: every grade cell's score, a short error line per failed cell (never its
   source), the judge's results, timings.

The coordinator (`grade_all`) is the only process that writes the course's gradebook: it merges
each result in one transaction (nbgrader's grades plus a row of our own table holding the whole
result), moves the autograded notebooks into course/autograded/, and writes grades.csv. A run
killed at any point and started again grades what was not merged yet; merged students are skipped
unless the submission changed or --force is given.
"""
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cs231n.tasks import TASKS_BY_FILE

from .config import PACKAGE, ROOT, Course
from .stubs import strip_package

NOTEBOOK_TIMEOUT = 1800  # seconds for the whole nbgrader run of one student
# What nbgrader autograde leaves out when it copies a submission into autograded/: the course's
# list (nbgrader_config.py) also leaves out *.so, to keep builds out of the release, but the
# package graded here is ours (assemble_package) and its compiled fast layers must reach the
# kernel: without them every ConvNet in the notebooks trains on the naive layers.
GRADING_IGNORE = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")
RESULTS_TABLE = "cs231n_results"


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


# --------------------------------------------------------------------------------------------
# One student (runs in a worker)
# --------------------------------------------------------------------------------------------
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


def _first_error_line(cell):
    """'Ename: evalue' of a cell's error output (no traceback: it would show test source)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            value = str(out.get("evalue", "")).strip()
            return f"{out.get('ename', 'Error')}: {value[:400]}" if value else out.get("ename", "Error")
    return ""


def read_notebook_grades(course_root, db_url, assignment_id, student_id):
    """[{notebook, grades: [{name, auto_score, max_score, needs_manual_grade, message}]}]."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    notebooks = []
    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return notebooks
        for nb in submission.notebooks:
            path = Path(course_root) / "autograded" / student_id / assignment_id / f"{nb.name}.ipynb"
            cells = {}
            if path.exists():
                for cell in nbformat.read(path, as_version=4).cells:
                    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    if grade_id:
                        cells[grade_id] = cell
            grades = [{"name": g.name, "auto_score": g.auto_score, "max_score": g.max_score,
                       "needs_manual_grade": bool(g.needs_manual_grade),
                       "message": _first_error_line(cells.get(g.name, {}))} for g in nb.grades]
            notebooks.append({"notebook": nb.name, "grades": sorted(grades, key=lambda g: g["name"])})
    return notebooks


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


def _test_cell_sources(source_dir):
    """{notebook: {grade_id: source}} of the autograded test cells of the source notebooks."""
    import nbformat

    found = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        cells = {}
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and meta.get("grade_id"):
                cells[meta["grade_id"]] = cell.source
        found[path.stem] = cells
    return found


def _hidden_test_lines(source_dir):
    """The lines of the source notebooks' hidden tests (stripped, 8 characters or more)."""
    lines = set()
    for cells in _test_cell_sources(source_dir).values():
        for source in cells.values():
            inside = False
            for line in source.splitlines():
                if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                    inside = "BEGIN" in line
                elif inside and len(line.strip()) >= 8:
                    lines.add(line.strip())
    return lines


def withhold_hidden_tests(notebooks, source_dir, window=24):
    """Replace every grade message that quotes a hidden test (any `window` characters of one of
    its lines, or a marker) by its error name: the student's code runs in the kernel next to the
    hidden tests and could raise an error that quotes them, and messages reach the feedback."""
    pieces = set()
    for line in _hidden_test_lines(source_dir):
        pieces.update(line[i:i + window] for i in range(max(1, len(line) - window + 1)))
    for nb in notebooks:
        for g in nb["grades"]:
            message = g.get("message") or ""
            if "HIDDEN TESTS" in message or any(piece in message for piece in pieces):
                g["message"] = f"{message.split(':', 1)[0][:80]}: (message withheld: it quotes a hidden test)"


def confirm_with_functions(notebooks, functions, source_dir, tasks=None):
    """Keep a notebook test cell's points only if every student task named in its source (the
    source notebook's, hidden tests included; whole words) passed all its function-level judge
    cases: the kernel runs student code next to the tests and can patch its way through them,
    the judge cannot be fooled that way. Adjusts `notebooks` in place (auto_score 0, a message,
    the earlier score kept as score_before_check); returns the notebook score before the check."""
    import re

    from cs231n.tasks import TASKS

    tasks = TASKS if tasks is None else tasks
    cases = {}
    for f in functions:
        cases.setdefault(f["task"], []).append(bool(f["passed"]))
    failed = {t for t in tasks if not cases.get(t) or not all(cases[t])}
    words = {t: re.compile(rf"(?<![A-Za-z0-9_]){re.escape(t)}(?![A-Za-z0-9_])") for t in tasks}
    sources = _test_cell_sources(source_dir)
    before = 0.0
    for nb in notebooks:
        for g in nb["grades"]:
            before += g["auto_score"] or 0.0
            source = sources.get(nb["notebook"], {}).get(g["name"])
            if source is None:
                continue
            unconfirmed = [t for t in tasks if t in failed and words[t].search(source)]
            if unconfirmed and (g["auto_score"] or 0) > 0:
                g["score_before_check"] = g["auto_score"]
                g["auto_score"] = 0.0
                g["message"] = f"not confirmed by the function tests: {', '.join(unconfirmed)} failed"
    return before


def grade_submission(job):
    """Grade one student; returns a JSON-able dict (see the module docstring)."""
    started = time.time()
    scratch = Path(tempfile.mkdtemp(prefix=f"grade-{job.student_id}-", dir=job.scratch_root))
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

    # a JudgeError is ours, not the student's: it fails the run
    from .judge import judge_package

    hide = [job.course_root] if job.course_root else []
    functions = [asdict(r) for r in judge_package(judge_copy, timeout_per_case=job.judge_timeout, hide=hide)]
    judge_error = ""
    judged = time.time()

    ok, log = run_nbgrader_autograde(job, private)
    notebooks = read_notebook_grades(private, f"sqlite:///{private / 'gradebook.db'}",
                                     job.assignment_id, job.student_id)
    before_check = confirm_with_functions(notebooks, functions, Path(job.source_root) / job.assignment_id)
    withhold_hidden_tests(notebooks, Path(job.source_root) / job.assignment_id)
    return {
        "student_id": job.student_id,
        "digest": submission_digest(job.submitted_dir),
        "notebooks": notebooks,
        "notebook_score_before_check": before_check,
        "functions": functions,
        "missing_files": missing,
        "nbgrader_ok": ok,
        "nbgrader_log": "" if ok else log,
        "judge_error": judge_error,
        "seconds": {"judge": round(judged - started, 2), "notebooks": round(time.time() - judged, 2)},
        "autograded_dir": str(private / "autograded" / job.student_id / job.assignment_id),
        "scratch": str(scratch),
    }


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
def scores(result):
    """(score, max_score, parts) of a result: notebooks (extra_ cells add to the score only)
    plus function tests."""
    nb_score = nb_max = 0.0
    manual_pending = 0
    for nb in result["notebooks"]:
        for g in nb["grades"]:
            if g["needs_manual_grade"]:
                manual_pending += 1
            nb_score += g["auto_score"] or 0.0
            if not g["name"].startswith("extra_"):
                nb_max += g["max_score"]
    fn_score = sum(f["points"] for f in result["functions"])
    fn_max = sum(f["max_points"] for f in result["functions"])
    parts = {"notebook_score": nb_score, "notebook_max": nb_max, "function_score": fn_score,
             "function_max": fn_max, "manual_pending": manual_pending}
    return nb_score + fn_score, nb_max + fn_max, parts


# --------------------------------------------------------------------------------------------
# The coordinator: the one writer to the gradebook
# --------------------------------------------------------------------------------------------
def _results_table():
    from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

    meta = MetaData()
    return Table(RESULTS_TABLE, meta,
                 Column("assignment_id", String(128), primary_key=True),
                 Column("student_id", String(128), primary_key=True),
                 Column("digest", String(64), nullable=False),
                 Column("result", Text, nullable=False),
                 Column("graded_at", DateTime, nullable=False))


def merged_digests(course):
    """{student_id: digest} of every result already merged into the gradebook."""
    from nbgrader.api import Gradebook

    table = _results_table()
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        rows = gb.db.execute(table.select().where(table.c.assignment_id == course.assignment_id)).fetchall()
    return {row.student_id: row.digest for row in rows}


def stored_results(course):
    """{student_id: result dict} of every merged result."""
    from nbgrader.api import Gradebook

    table = _results_table()
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        rows = gb.db.execute(table.select().where(table.c.assignment_id == course.assignment_id)).fetchall()
    return {row.student_id: json.loads(row.result) for row in rows}


def merge_result(course, result):
    """Write one student's result into the gradebook in a single transaction."""
    import datetime

    from nbgrader.api import Gradebook

    table = _results_table()
    sid, aid = result["student_id"], course.assignment_id
    stored = {k: v for k, v in result.items() if k not in ("scratch", "autograded_dir")}
    with Gradebook(course.db_url) as gb:
        table.create(gb.db.get_bind(), checkfirst=True)
        gb.update_or_create_student(sid)
        gb.update_or_create_submission(aid, sid)
        for nb in result["notebooks"]:
            for g in nb["grades"]:
                grade = gb.find_grade(g["name"], nb["notebook"], aid, sid)
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = g["needs_manual_grade"]
        gb.db.execute(table.delete().where((table.c.assignment_id == aid) & (table.c.student_id == sid)))
        gb.db.execute(table.insert().values(assignment_id=aid, student_id=sid, digest=result["digest"],
                                            result=json.dumps(stored),
                                            graded_at=datetime.datetime.now(datetime.timezone.utc)))
        gb.db.commit()


def _replace_dir(src, dest):
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.incoming")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def _sources_digest(course):
    """sha256 over the source notebooks, the nbgrader configuration and the gradebook's URL:
    what generate_assignment's output depends on."""
    digest = hashlib.sha256(course.db_url.encode())
    for path in [ROOT / "nbgrader_config.py", *sorted(course.source.glob("*.ipynb"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prepare(course):
    """The shared inputs of every job: the base package and the template gradebook.

    The template, and the assignment in the course's gradebook, are made again only when the
    sources changed (nbgrader's generate_assignment costs seconds per run).
    """
    from nbgrader.apps import NbGraderAPI

    work = course.root / ".grading"
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base" / "cs231n"
    shutil.rmtree(base.parent, ignore_errors=True)
    strip_package(PACKAGE, base, keep_binaries=True)
    template_root = work / "template"
    template_db = template_root / "gradebook.db"
    stamp, digest = work / "sources.sha256", _sources_digest(course)
    if template_db.exists() and stamp.exists() and stamp.read_text() == digest:
        (work / "scratch").mkdir(exist_ok=True)
        return base, template_db, work / "scratch"
    stamp.unlink(missing_ok=True)
    shutil.rmtree(template_root, ignore_errors=True)
    template_root.mkdir()
    api = NbGraderAPI(config=Course(template_root, f"sqlite:///{template_db}", course.source_root,
                                    course.assignment_id).nbgrader_config())
    result = api.generate_assignment(course.assignment_id, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('error')}")
    # the course's own gradebook must know the assignment too
    api = NbGraderAPI(config=course.nbgrader_config())
    if not api.generate_assignment(course.assignment_id, force=True, create=True)["success"]:
        raise RuntimeError("nbgrader generate_assignment failed for the course gradebook")
    (work / "scratch").mkdir(exist_ok=True)
    stamp.write_text(digest)
    return base, template_db, work / "scratch"


def submitted_students(course):
    folder = course.root / "submitted"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / course.assignment_id).is_dir())


def grade_all(course, students=None, workers=None, scheduler=None, force=False, dataset="digits",
              progress=True, on_result=None, judge_timeout=20, cell_timeout=300):
    """Grade every submitted student (or `students`); returns ({student_id: result}, {student_id: why}),
    the second for submissions the grader itself could not run (an infrastructure failure, not a
    student's error: those are scores).

    workers: processes on this machine (default: the number of cores); scheduler: the address of
    a Dask scheduler to send the jobs to instead. Results are merged as they arrive.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    base, template_db, scratch = prepare(course)
    available = submitted_students(course)
    unknown = sorted(set(students or []) - set(available))
    if unknown:
        raise ValueError(f"no submission collected for {unknown}; collected: {available}")
    students = students or available
    done = {} if force else merged_digests(course)
    jobs = []
    for sid in students:
        submitted = course.step_dir("submitted", sid)
        if done.get(sid) == submission_digest(submitted):
            continue
        jobs.append(GradeJob(sid, course.assignment_id, str(submitted), str(base), str(template_db),
                             str(course.source_root), str(scratch), dataset, cell_timeout, judge_timeout,
                             str(course.root)))
    results, failures = {}, {}
    bar = tqdm(total=len(jobs), desc="grading", unit="submission", disable=not progress)

    def handle(result):
        if Path(result["autograded_dir"]).is_dir():
            _replace_dir(result["autograded_dir"], course.step_dir("autograded", result["student_id"]))
        merge_result(course, result)
        shutil.rmtree(result["scratch"], ignore_errors=True)
        results[result["student_id"]] = result
        bar.update(1)
        if on_result:
            on_result(result)

    def settle(future, student_id):
        try:
            handle(future.result())
        except Exception as error:  # noqa: BLE001 - reported per student, the batch goes on
            failures[student_id] = f"{type(error).__name__}: {error}"
            bar.update(1)

    if scheduler:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            futures = {client.submit(grade_submission, job, key=f"grade-{job.student_id}-{time.time()}",
                                     pure=False): job.student_id for job in jobs}
            for future in dask_completed(futures):
                settle(future, futures[future])
    elif jobs:
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
            futures = {pool.submit(grade_submission, job): job.student_id for job in jobs}
            for future in as_completed(futures):
                settle(future, futures[future])
    bar.close()
    return results, failures
