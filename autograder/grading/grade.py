"""The grading coordinator: one job per student (grading.grade_one) on a process pool or a Dask
cluster, under the course folder's lock, the only writer of the gradebook, resumable (a run
killed at any point, started again, grades what is not graded yet).
docs/grading.md, "The processes" and "The life of one student's grading".
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Union

from autograder.budget import TimeBudget

from autograder.config import PACKAGE, ROOT, Course, nbgrader_succeeded, shown_url
from autograder.grading.failures import reason_for
from autograder.sandbox.forked import die_with_parent
from autograder.grading.grade_one import GradeJob, grade_submission, submission_digest
from autograder.grading.lock import course_lock
from autograder.notebooks.preload import modules_to_preload
from autograder.release.stubs import strip_package
from autograder.results.records import GradeResult, NotGraded
from autograder.results.store import merge_result, merged_digests, record_not_graded

Outcome = Union[GradeResult, NotGraded]  # what one job gives back
Prepared = tuple[Union[str, Path], Union[str, Path], Union[str, Path]]  # prepare()'s base, template_db, scratch


class NeedsRoot(RuntimeError):
    """Grading was started without root; nothing was graded or recorded."""


def require_root(euid: int | None = None, who: str = "this process") -> None:
    """Raise NeedsRoot unless the grading runs as root (euid: of `who`, default this process's).

    Each student run gets an unprivileged user of its own, a cgroup and a tmpfs, which only root
    can set up (docs/isolation.md): without root every student would be stored "not graded"."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise NeedsRoot(f"grading needs root, and {who} runs as uid {euid}: every student's code runs as an "
                        "unprivileged user of its own, with a cgroup, in a bubblewrap sandbox, which only root "
                        "can set up. Nothing was graded or recorded. Grade as root (docs/jupyterhub.md, step 5)")


def _require_root_on(scheduler: str) -> None:
    """require_root for every worker of the Dask cluster at scheduler (they run the students' code)."""
    from distributed import Client

    with Client(scheduler) as client:
        for worker, euid in sorted(client.run(os.geteuid).items()):
            require_root(euid, f"the Dask worker {worker}")


def _replace_dir(src: str | Path, dest: str | Path) -> None:
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


def _sources_digest(course: Course) -> str:
    """sha256 over the source notebooks, the nbgrader configuration and the gradebook's URL
    (its password hidden: a hash of it is no business of this file): what generate_assignment's
    output depends on."""
    digest = hashlib.sha256(shown_url(course.db_url).encode())
    for path in [ROOT / "nbgrader_config.py", *sorted(course.source.glob("*.ipynb"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prepare(course: Course) -> tuple[Path, Path, Path]:
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
    nbgrader_succeeded(api.generate_assignment(course.assignment_id, force=True, create=True),
                       "generate_assignment (the template gradebook)")
    # the course's own gradebook must know the assignment too
    api = NbGraderAPI(config=course.nbgrader_config())
    nbgrader_succeeded(api.generate_assignment(course.assignment_id, force=True, create=True),
                       "generate_assignment (the course gradebook)")
    (work / "scratch").mkdir(exist_ok=True)
    stamp.write_text(digest)
    return base, template_db, work / "scratch"


def submitted_students(course: Course) -> list[str]:
    folder = course.root / "submitted"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / course.assignment_id).is_dir())


def remove_stale_scratch(scratch: str | Path) -> int:
    """Remove the grade-* folders of runs that are gone (call it holding the course's lock:
    then every such folder is stale); returns how many went."""
    removed = 0
    for stale in Path(scratch).glob("grade-*"):
        shutil.rmtree(stale, ignore_errors=True)
        removed += 1
    return removed


def _die_with(coordinator_pid: int) -> None:
    """A pool worker's initializer: SIGKILL when the coordinator dies, however it dies."""
    if not die_with_parent(coordinator_pid):  # it died already
        os._exit(1)


def grade_all(course: Course, students: list[str] | None = None, workers: int | None = None,
              scheduler: str | None = None, force: bool = False, dataset: str = "digits", progress: bool = True,
              on_result: Callable[[Outcome], None] | None = None, budget: TimeBudget = TimeBudget(),
              own_user: bool = False) -> tuple[dict[str, GradeResult], dict[str, str]]:
    """Grade every submitted student (or `students`) not graded yet; returns
    ({student_id: GradeResult}, {student_id: why}), the second for students the grader itself
    failed to grade this run (stored as not graded, retried by the next run; a student's own
    errors are scores, in the first).

    workers: processes on this machine (default: the number of cores); scheduler: the address of
    a Dask scheduler to send the jobs to instead. Outcomes are stored as they arrive; on_result
    is called with each (a GradeResult or a NotGraded) once stored. Raises, before anything is
    stored, NeedsRoot when not run as root (or a Dask worker is not), and
    autograder.grading.lock.CourseBusy when another run holds the course folder. own_user: grade without
    root, the runs as the caller's own user (the sandbox's self mode: a self-learner's own work,
    autograder.selfstudy.grade_mine), never for a class. budget: the time limits of every student's
    grading (autograder.budget).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if own_user:
        pass  # the caller's own work, in the sandbox's self mode (sandbox.self_mode)
    elif scheduler:
        _require_root_on(scheduler)
    else:
        require_root()
    with course_lock(course.root):
        try:
            prepared: Prepared = prepare(course)
            unprepared = ""
            remove_stale_scratch(prepared[2])
        except Exception as error:  # noqa: BLE001 - every student is then not graded, saying why
            prepared = ("", "", "")
            unprepared = f"the run could not prepare the grading: {reason_for(error, course.root)}"
        jobs = pending_jobs(course, students, force, prepared, dataset=dataset, budget=budget)
        outcomes = _Outcomes(course, jobs, progress, on_result)
        if unprepared:
            for job in jobs:
                outcomes.settle(job.student_id, partial(NotGraded, job.student_id, job.digest, unprepared))
        elif scheduler:
            from distributed import Client
            from distributed import as_completed as dask_completed

            with Client(scheduler) as client:
                futures = {client.submit(grade_submission, job, key=f"grade-{job.student_id}-{time.time()}",
                                         pure=False): job.student_id for job in jobs}
                for future in dask_completed(futures):
                    outcomes.settle(futures[future], future.result)
        elif jobs:
            with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=_die_with,
                                     initargs=(os.getpid(),)) as pool:
                futures = {pool.submit(grade_submission, job): job.student_id for job in jobs}
                for future in as_completed(futures):
                    outcomes.settle(futures[future], future.result)
        return outcomes.close()


def pending_jobs(course: Course, students: list[str] | None, force: bool, prepared: Prepared,
                 dataset: str = "digits", budget: TimeBudget = TimeBudget()) -> list[GradeJob]:
    """A GradeJob for each of students (default: every submitted one) whose submission is not
    graded yet (every one with force). prepared: prepare()'s (base, template_db, scratch)."""
    available = submitted_students(course)
    unknown = sorted(set(students or []) - set(available))
    if unknown:
        raise ValueError(f"no submission collected for {unknown}; collected: {available}")
    done = {} if force else merged_digests(course)
    base, template_db, scratch = map(str, prepared)
    preload = modules_to_preload(sorted(course.source.glob("*.ipynb")), Path(base))  # the source's, once per run
    jobs = []
    for sid in students or available:
        submitted = course.step_dir("submitted", sid)
        digest = submission_digest(submitted)
        if done.get(sid) != digest:
            jobs.append(GradeJob(sid, course.assignment_id, str(submitted), base, template_db,
                                 str(course.source_root), scratch, dataset=dataset, course_root=str(course.root),
                                 digest=digest, budget=budget, preload=preload))
    return jobs


class _Outcomes:
    """The coordinator's side of the outcomes: each stored in one transaction as it arrives,
    counted on the progress bar, kept for the return value."""

    def __init__(self, course: Course, jobs: list[GradeJob], progress: bool,
                 on_result: Callable[[Outcome], None] | None) -> None:
        from tqdm.auto import tqdm

        self.course, self.on_result = course, on_result
        self.digests = {job.student_id: job.digest for job in jobs}
        self.results: dict[str, GradeResult] = {}
        self.failures: dict[str, str] = {}
        self.bar = tqdm(total=len(jobs), desc="grading", unit="submission", disable=not progress)

    def settle(self, student_id: str, get_outcome: Callable[[], Outcome]) -> None:
        """Store the outcome get_outcome() returns; an exception it raises (a worker that died,
        a Dask error) makes the student not graded."""
        try:
            outcome = get_outcome()
        except Exception as error:  # noqa: BLE001 - per student; the batch goes on
            outcome = NotGraded(student_id, self.digests[student_id], reason_for(error))
        outcome = self._store(outcome)
        if outcome.scratch:
            shutil.rmtree(outcome.scratch, ignore_errors=True)
        if isinstance(outcome, GradeResult):
            self.results[student_id] = outcome
        else:
            self.failures[student_id] = outcome.reason
        self.bar.update(1)
        if self.on_result:
            self.on_result(outcome)

    def _store(self, outcome: Outcome) -> Outcome:
        """A GradeResult that cannot be stored becomes a NotGraded; a NotGraded that cannot be
        stored is not (the student stays pending: the next run grades them anyway)."""
        course = self.course
        if isinstance(outcome, GradeResult):
            try:
                if Path(outcome.autograded_dir).is_dir():
                    _replace_dir(outcome.autograded_dir, course.step_dir("autograded", outcome.student_id))
                merge_result(course, outcome)
                return outcome
            except Exception as error:  # noqa: BLE001 - the grader's failure: not graded, retried
                outcome = NotGraded(outcome.student_id, outcome.digest, reason_for(error, course.root),
                                    scratch=outcome.scratch)
        try:
            record_not_graded(course, outcome)
        except Exception as error:  # noqa: BLE001 - see the docstring
            outcome.reason += f" (and the failure could not be stored: {reason_for(error)})"
        return outcome

    def close(self) -> tuple[dict[str, GradeResult], dict[str, str]]:
        self.bar.close()
        return self.results, self.failures
