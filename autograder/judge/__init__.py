"""The function-level judge: each student task scored on hidden cases, outside the student's
process.

    from autograder.judge import judge_package, hidden_cases, max_points
    results = judge_package("submitted/alice/a2")   # a folder holding alice's cs231n/
    sum(r.points for r in results), max_points()

Why outside: nbgrader runs student code in the kernel that runs the tests, so a submission that
patches `np.allclose` passes everything (DESIGN.md, "Solutions, release and grading"). Here the
student's package only ever computes outputs; whether they are right is decided elsewhere.

Cases. autograder/hidden/cases.py lists, per task of `cs231n.tasks.find_tasks`, a few cases
(other shapes, strides, paddings, batch 1, several optimiser steps, ...), each with points, a
probe and a seeded input generator. A probe (probes.py) is a small function that calls the task
the way the notebooks do and returns named arrays. The grader runs every probe once against the
reference package, in a trusted worker, and keeps the outputs per reference version. A task
without a case is an error (JudgeError), never a task silently worth nothing.

Re-checks (case.Recheck, RECHECKS in the same file; `recheck_package`) re-run notebook cells that
check notebook state, in the same kind of worker: the student's model trained there, its
parameters evaluated by the grader on images the worker never sees, or a table compared with the
reference's. They carry no points; a notebook cell naming one keeps its points only if it passes.

Threat model. The submission is hostile code run by root. It may: patch numpy or anything else
in its own process; exit, crash, loop forever ignoring signals, fork, exhaust memory or disk,
print gigabytes; return lying objects (ndarray subclasses, objects with a rigged __eq__, object
arrays, lists, nan); write anything to the channel; try to read the reference solutions, the
hidden cases, the gradebook or other submissions; open network connections. So:
- The worker (worker.py, run as `python -I -S` so no environment variable, user site or .pth
  file shapes its imports) imports a COPY of the package's .py files (symlinks, compiled files
  and oversized files left out) and answers requests on duplicated stdin/stdout descriptors;
  fds 0-2 point at /dev/null before the package is imported, so prints go nowhere.
- The channel (wire.py) carries length-prefixed uncompressed .npz messages of plain arrays:
  no pickles, no eval. The grader caps the bytes it reads per reply and decodes replies
  itself, refusing object, structured and compressed members and checking each header
  against its bytes. The worker refuses anything but exact ndarrays of numbers, but the grader
  re-checks keys, dtype kind and width, shape, finiteness and the relative error itself.
- A case gets `timeout_per_case` seconds of wall clock; then the worker's process group and
  PID namespace are killed, the case fails, and the next case gets a fresh worker. A worker
  that dies fails only its case; a package whose import kills or hangs the worker fails every
  case at once, without retrying. `total_timeout` bounds a whole submission.
- sandbox.py starts the worker in bubblewrap (docs/isolation.md): a new root holding only
  read-only binds of the interpreter, site-packages and the worker's folder (the copied .py
  files: no compiled layers), new user, PID, network, IPC, UTS and cgroup namespaces, the student
  run's own unprivileged uid, rlimits (RLIMIT_CPU, RLIMIT_AS from `memory_mb`, RLIMIT_NPROC,
  RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE 0) and the run's cgroup (memory, processes) where the
  machine offers one. Without bwrap the judge refuses to run (BwrapMissing says how to get it).
What stays possible: a submission can spend its own time and memory, and learn its own inputs.
It cannot learn the expected outputs, which never leave the grader.
"""
from autograder.hidden.case import Case
from autograder.judge.grader import CaseResult, JudgeError, RecheckResult, cases_for, judge_package, recheck_package


def hidden_cases(reference_pkg_dir=None):
    """(task, case, points) of every hidden case, in the order judge_package returns them."""
    return [(c.task, c.name, float(c.points)) for c in cases_for(reference_pkg_dir)]


def max_points(reference_pkg_dir=None):
    """Total points of the hidden cases."""
    return float(sum(points for _, _, points in hidden_cases(reference_pkg_dir)))


__all__ = ["Case", "CaseResult", "JudgeError", "RecheckResult", "hidden_cases", "judge_package",
           "max_points", "recheck_package"]
