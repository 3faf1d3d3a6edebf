"""The grading coordinator: submissions graded on a process pool or a Dask cluster (one student
per job: autograder.grade_one), one writer to the gradebook, resumable.

The coordinator (`grade_all`) is the only process that writes the course's gradebook: it merges
each result in one transaction (nbgrader's grades plus a row of our own table holding the whole
result), moves the autograded notebooks into course/autograded/, and writes grades.csv. A run
killed at any point and started again grades what was not merged yet; merged students are skipped
unless the submission changed or --force is given.
"""
import hashlib
import os
import shutil
import time
from pathlib import Path

from .config import PACKAGE, ROOT, Course
from .grade_one import GradeJob, grade_submission, submission_digest
from .results import merge_result, merged_digests
from .stubs import strip_package


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
