"""Which failures are the grader's, and how to say why a student was not graded.

A student's notebook that errors, loops or kills its kernel is the student's failure: it is a
score. Everything else that stops a grading is the grader's and never a score: the disk or
quota full, a database error, nbgrader or a zygote crashing, the grader's own time limit, the
judge's infrastructure, an exception in our code, a worker process that died, a kernel killed
from outside the student's own limits (autograder.notebooks.kernel_deaths: the machine's OOM killer).
"""
from __future__ import annotations

import errno
import shutil
import signal
import tempfile
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.errors import RUN_NOT_SET_UP, JudgeError, ZygoteFailed

if TYPE_CHECKING:
    from autograder.notebooks.kernel_deaths import Death

LOW_DISK_BYTES = 32 * 2**20  # a filesystem with less free than this is full for grading


def disk_full_at(*paths: str | Path) -> str | None:
    """The first of paths whose filesystem has less than LOW_DISK_BYTES free, or None."""
    for path in paths:
        try:
            if shutil.disk_usage(path).free < LOW_DISK_BYTES:
                return str(path)
        except OSError:
            continue
    return None


def reason_for(error: BaseException, *places: str | Path) -> str:
    """'why' of a grader-side failure raised as an exception, for 'not graded: why'. places:
    folders the grading wrote to; when one of their disks is full, that is the why (a copy of
    many files reports the disk full only inside its list of errors)."""
    full = disk_full_at(*places)
    if full and not (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)):
        return f"disk full at {full} ({type(error).__name__}): free space on the course's disk, then grade again"
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {error.filename}" if error.filename else ""
        what = "disk full" if error.errno == errno.ENOSPC else "disk quota exceeded"
        return f"{what}{where}: free space on the course's disk, then grade again"
    module = type(error).__module__ or ""
    if module.startswith(("sqlalchemy", "sqlite3", "psycopg")):
        return f"database error: {type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
    if isinstance(error, JudgeError):
        return f"the judge failed: {error}"
    if isinstance(error, ZygoteFailed):
        return f"nbgrader crashed: {error}"
    if isinstance(error, BrokenProcessPool):
        return "the grading worker died (killed, or out of memory): grade again"
    return f"grader error: {type(error).__name__}: {error}"


def nbgrader_failure(returncode: int, timed_out: bool, scratch: str | Path) -> str | None:
    """'why' when a failed nbgrader run is the grader's failure, None when it is the student's
    (their notebooks ran and failed: a score).

    Grader-side: nbgrader killed at the grader's own time limit; the scratch or temp disk full
    (a fact measured here, not the log's word: a student's kernel can write anything there).
    Any other non-zero exit is read as the student's (a kernel that died or looped makes
    nbgrader exit 1 too)."""
    if timed_out:
        return "the grader's own time limit for nbgrader ran out (not a notebook's budget): grade again"
    if returncode == 0:
        return None
    full = disk_full_at(scratch, tempfile.gettempdir())
    if full:
        return f"disk full at {full} while nbgrader ran: free space on the course's disk, then grade again"
    return None


def run_not_set_up(returncode: int, log: str) -> str | None:
    """'why' when nbgrader's run could not be set up (exit status RUN_NOT_SET_UP: its tmpfs, its
    folders), before any of the student's code ran."""
    if returncode != RUN_NOT_SET_UP:
        return None
    last = next((line.strip() for line in reversed(log.splitlines()) if line.strip()), "(no log)")
    return (f"the student's run could not be set up, before any of their code ran ({last[:300]}): "
            "grade again")


def kernel_death_failure(deaths: Iterable[Death]) -> str | None:
    """'why' when a kernel death of the run (kernel_deaths.Death) was the grader's, None when
    every one was the student's (a score: the notebook stopped where its kernel died)."""
    for death in deaths:
        host = death.hosts_doing()
        if host and death.at_start:
            return f"the kernel of {death.notebook}.ipynb failed on the grader's side: {host}: grade again"
        if host:
            return (f"the kernel of {death.notebook}.ipynb was killed from outside the student's limits ({host}): "
                    "grade again, with more memory free on the grading machine if the OOM killer did it")
    return None


def nbgrader_killed(returncode: int, oom_killed: bool, at_own_limit: bool) -> str | None:
    """'why' when the student's nbgrader was killed from outside the student's limits: by a
    signal (returncode < 0), or the OOM killer acting in its cgroup, while that cgroup had not
    reached its own limit. None otherwise: it exited, or the student's notebooks filled its own
    limit (theirs). Called only when the grader's own time limit did not end it."""
    if at_own_limit or not (returncode < 0 or oom_killed):
        return None
    how = f"by {signal.Signals(-returncode).name}" if returncode < 0 else "by the OOM killer"
    return (f"nbgrader was killed {how} while under its own memory limit (the grading machine, not the "
            "student's notebooks): grade again")
