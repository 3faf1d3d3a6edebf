"""The grader's side: prepare a worker, send each case's inputs, compare the replies with the
reference's outputs, and turn each case into a CaseResult."""
import contextlib
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from autograder.budget import TimeBudget
from autograder.sandbox import bubblewrap as _sandbox
from autograder.judge import wire
from autograder.errors import JudgeError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the instructor's tree: reference package, hidden cases, course
WORKER_FILES = ("worker.py", "wire.py", "probes.py")
MODULES = ("layers", "optim", "classifiers", "arch", "solver")
MAX_FILE_BYTES = 2 << 20  # per file copied from a submission
MAX_PACKAGE_BYTES = 32 << 20
MAX_PACKAGE_FILES = 2000
REFERENCE_MEMORY_MB = 4096  # the reference's worker: ours, trusted, so only a guard
ENV_PASSED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # needed on some CPUs, see the env notes


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one hidden case; message is short, for the student's feedback."""

    task: str
    case: str
    points: float
    max_points: float
    passed: bool
    message: str


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------
def _all_cases():
    from autograder.hidden.cases import CASES

    return CASES


def _salt():
    from autograder.hidden.cases import SALT

    return SALT


def _tasks(reference_pkg_dir):
    from cs231n.tasks import find_tasks

    return [t.name for t in find_tasks(Path(reference_pkg_dir) / "cs231n")]


def cases_for(reference_pkg_dir=None):
    """The cases of every task of the reference package, in the order of find_tasks.

    Raises JudgeError if a task has no case: points cannot be left undefined. Cases of tasks
    that the reference package does not have are left out (with a log message).
    """
    tasks = _tasks(reference_pkg_dir or ROOT)
    by_task = {}
    for case in _all_cases():
        by_task.setdefault(case.task, []).append(case)
    missing = [t for t in tasks if t not in by_task]
    if missing:
        raise JudgeError(f"tasks without hidden cases: {', '.join(missing)}; add cases for them "
                         "in autograder/hidden/cases.py")
    unknown = sorted(set(by_task) - set(tasks))
    if unknown:
        log.info("judge: cases for tasks the reference package does not have: %s", unknown)
    keys = [c.key for c in _all_cases()]
    if len(set(keys)) != len(keys):
        raise JudgeError("two hidden cases share a task and name")
    return [case for task in tasks for case in by_task[task]]


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------
def _copy_package(src_parent, dst_parent):
    """Copy the .py files of src_parent/cs231n to dst_parent/cs231n; returns False if there is
    no such package. Symlinks, special files, compiled files and oversized files are left out:
    the copy is made by the grader (perhaps root) from untrusted input."""
    src = Path(src_parent) / "cs231n"
    if src.is_symlink() or not src.is_dir():
        return False
    total, count = 0, 0
    for folder, dirs, files in os.walk(src, followlinks=False):
        rel = Path(folder).relative_to(src)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                         and not os.path.islink(os.path.join(folder, d)))
        target = Path(dst_parent) / "cs231n" / rel
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            try:
                fd = os.open(os.path.join(folder, name),
                             os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                    continue
                total, count = total + info.st_size, count + 1
                if total > MAX_PACKAGE_BYTES or count > MAX_PACKAGE_FILES:
                    return True
                data = f.read(MAX_FILE_BYTES)
            (target / name).write_bytes(data)
            os.chmod(target / name, 0o644)
    return True


def _prepare(tmp, pkg_parent):
    """tmp/w/{pkg/cs231n, judge/<worker files>}; returns (w, whether a package was found).
    Only .py files are copied, so the judged package has no compiled layers to load."""
    w = Path(tmp) / "w"
    for sub in ("pkg", "judge"):
        (w / sub).mkdir(parents=True)
        os.chmod(w / sub, 0o755)
    os.chmod(w, 0o755)
    found = _copy_package(pkg_parent, w / "pkg")
    for name in WORKER_FILES:
        shutil.copyfile(HERE / name, w / "judge" / name)
        os.chmod(w / "judge" / name, 0o644)
    return w, found


def _env(home):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "TMPDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.update({k: os.environ[k] for k in ENV_PASSED if k in os.environ})
    return env


# --------------------------------------------------------------------------------------------
# One worker process
# --------------------------------------------------------------------------------------------
class CaseTimeout(Exception):
    pass


class WorkerGone(Exception):
    """The worker died or broke the protocol; the message says how."""


class ImportBroken(Exception):
    """The worker died or hung while importing the package."""


class Worker:
    """One worker process on one prepared folder; start() then ask() once per case.

    box: the Sandbox it runs in (group: its run's RunGroup), or None for our own reference
    package, which runs with the limits only."""

    def __init__(self, w, limits, box, stderr_path, boot_seconds, group=None):
        self.w, self.limits, self.box, self.group = w, limits, box, group
        self.boot_seconds = boot_seconds  # our own start-up, before any submitted code runs
        self.stderr_path = stderr_path
        self.proc = None

    def start(self, import_timeout):
        argv = [os.path.realpath(sys.executable), "-I", "-S", str(self.w / "judge" / "worker.py"),
                str(self.w / "pkg"), _sandbox.site_packages(), *MODULES]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        with open(self.stderr_path, "wb") as stderr:
            if self.box is None:
                self.proc = _sandbox.trusted_popen(argv, self.w, self.limits, env=_env(self.w),
                                                   stderr=stderr, **pipes)
            else:
                self.proc = _sandbox.sandboxed_popen(argv, self.box, group=self.group, env=_env("/tmp"),
                                                     stderr=stderr, **pipes)
        self.out, self.inp = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        os.set_blocking(self.inp, False)
        try:
            self._expect("booted", time.monotonic() + self.boot_seconds)
        except (WorkerGone, CaseTimeout) as exc:
            self.stop()
            raise JudgeError(f"the judge's worker did not start ({exc}): "
                             f"{self._stderr_tail()}") from None
        try:
            self._expect("ready", time.monotonic() + import_timeout)
        except CaseTimeout:
            self.stop()
            raise ImportBroken(f"importing it took longer than {import_timeout:g} s") from None
        except WorkerGone as exc:
            raise ImportBroken(f"the process importing it {exc}") from None

    def _expect(self, status, deadline):
        reply = self._read(deadline, 1 << 16)
        if reply.status != status:
            raise WorkerGone(f"sent {reply.status!r} instead of {status!r}")

    def _read(self, deadline, max_bytes):
        try:
            return wire.Reply.from_untrusted(wire.read_message(self.out, deadline, max_bytes), max_bytes)
        except wire.Timeout:
            raise CaseTimeout() from None
        except wire.Closed:
            raise WorkerGone(self._exit()) from None
        except wire.ChannelError as exc:
            self.stop()
            raise WorkerGone(f"sent a reply the grader cannot read: {exc}") from None

    def _exit(self):
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.stop()
            return "closed its output"
        code = self.proc.returncode
        self.stop()
        if code == 137 or code == -9:
            return ("was killed (SIGKILL: out of memory or a limit)")
        return _sandbox.describe_exit(code)

    def ask(self, request, timeout, max_bytes):
        """The worker's reply to one request; raises CaseTimeout or WorkerGone."""
        deadline = time.monotonic() + timeout
        try:
            wire.write_message(self.inp, request.encode(), deadline)
        except wire.Timeout:
            raise CaseTimeout() from None
        except wire.Closed:
            raise WorkerGone(self._exit()) from None
        return self._read(deadline, max_bytes)

    def stop(self):
        if self.proc is not None:
            _sandbox.kill_tree(self.proc)
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def _stderr_tail(self):
        try:
            return Path(self.stderr_path).read_bytes()[-1500:].decode(errors="replace").strip()
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------
def relative_error(got, expected):
    """max |a - b| / max(|a| + |b|, 1e-8), the notebooks' measure (0 for empty arrays)."""
    if got.size == 0:
        return 0.0
    a, b = got.astype(np.float64), expected.astype(np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


def _dtype_problem(got, expected):
    if expected.kind == "f":
        if got.kind != "f":
            return f"returned {got}, expected {expected}"
        if got.itemsize < expected.itemsize:
            return f"returned {got}, expected {expected}"
    elif expected.kind in "iu":
        if got.kind not in "iu":
            return f"returned {got}, expected integers"
    elif got.kind != expected.kind:
        return f"returned {got}, expected {expected}"
    return None


def compare(case, reply, expected, where):
    """(passed, message) for one reply (untrusted) against the expected outputs."""
    if reply.status == "error":
        kind, message, fn = reply.error or "an error", reply.message, reply.where
        if kind == "BadOutput":
            return False, f"{message} {where}"
        if kind == "ImportError" and message.startswith("importing"):
            return False, message
        text = f"raised {kind}" + (f" in {fn}" if fn else "") + (f": {message}" if message else "")
        return False, f"{text} {where}"
    if reply.status != "ok":
        return False, f"the worker sent an unexpected reply {where}"
    got = reply.outputs
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing or extra:
        return False, (f"outputs {sorted(got)[:8]} do not match the expected {sorted(expected)} "
                       f"{where}")
    worst, worst_key = 0.0, None
    for key, want in expected.items():
        have = got[key]
        if have.dtype.kind == "U":
            return False, f"{key} is text, expected numbers {where}"
        problem = _dtype_problem(have.dtype, want.dtype)
        if problem:
            return False, f"{key}: {problem} {where}"
        if have.shape != want.shape:
            return False, f"{key} has shape {have.shape}, expected {want.shape} {where}"
        if have.dtype.kind == "f" and not np.all(np.isfinite(have)):
            return False, f"{key} contains nan or inf {where}"
        tol = case.tolerance(key)
        if tol == 0 or want.dtype.kind in "biu":
            if not np.array_equal(have, want):
                return False, f"{key} is wrong {where}"
            continue
        err = relative_error(have, want)
        if not err <= tol:
            return False, f"relative error {err:.1e} > {tol:g} in {key} {where}"
        if err >= worst:
            worst, worst_key = err, key
    return True, "passed" + (f" (largest relative error {worst:.0e}, in {worst_key})"
                             if worst_key is not None and worst > 0 else "")


def verdict(case, inputs, reply, where):
    """(passed, message) of case.verdict, run here on a reply (untrusted)."""
    if reply.status != "ok":
        return compare(case, reply, {}, where)
    try:
        passed, message = case.verdict(inputs, reply.outputs)
    except Exception as exc:  # noqa: BLE001  (a verdict is ours, but the arrays are not)
        log.warning("case %s: the verdict raised %r", case.key, exc)
        return False, f"its results could not be evaluated {where}"
    return passed, f"{message} {where}"


def summarized(case, inputs, reply):
    """A reply (untrusted) with its outputs reduced by case.summary, here."""
    if reply.status != "ok":
        return reply
    try:
        outputs = case.summary(inputs, reply.outputs)
    except Exception as exc:  # noqa: BLE001  (a summary is ours, but the arrays are not)
        log.warning("case %s: the summary raised %r", case.key, exc)
        return wire.Reply("error", error="BadOutput", message="its results could not be evaluated")
    return wire.Reply("ok", outputs)


# --------------------------------------------------------------------------------------------
# The reference's outputs, computed once per reference version
# --------------------------------------------------------------------------------------------
_EXPECTED = {}


def _digest(reference_pkg_dir, cases):
    h = hashlib.sha256()
    for path in sorted((Path(reference_pkg_dir) / "cs231n").rglob("*.py")):
        h.update(str(path).encode() + b"\0" + path.read_bytes())
    hidden = ROOT / "autograder" / "hidden"
    for path in (HERE / "probes.py", hidden / "case.py", hidden / "cases.py"):
        h.update(path.read_bytes())
    h.update(repr([c.key for c in cases]).encode())
    return h.hexdigest()


def expected_outputs(reference_pkg_dir, cases, salt, budget):
    """{case key: (inputs, outputs)} from the reference package, run in a trusted worker within
    the time one submission gets (budget.judge_boot to start, budget.judge_total for all cases).

    Raises JudgeError if the reference fails a case: a case the reference cannot pass is a
    bug in the case or the probe, not something to grade students on.
    """
    key = (str(Path(reference_pkg_dir).resolve()), _digest(reference_pkg_dir, cases), salt)
    if key in _EXPECTED:
        return _EXPECTED[key]
    results = {}
    with tempfile.TemporaryDirectory(prefix="cs231n-reference-") as tmp:
        w, found = _prepare(tmp, reference_pkg_dir)
        if not found:
            raise JudgeError(f"no cs231n package in the reference folder {reference_pkg_dir}")
        worker = Worker(w, _limits(budget, REFERENCE_MEMORY_MB), None, Path(tmp) / "stderr",
                        budget.judge_boot)
        try:
            worker.start(budget.judge_boot)
        except ImportBroken as exc:
            raise JudgeError(f"the reference package cannot be imported: {exc}") from None
        deadline = time.monotonic() + budget.judge_total
        try:
            for case in cases:
                inputs = case.inputs(salt)
                try:
                    reply = worker.ask(_request(case, inputs), deadline - time.monotonic(), 1 << 30)
                except (CaseTimeout, WorkerGone) as exc:
                    raise JudgeError(f"the reference failed hidden case {case.key}: "
                                     f"{type(exc).__name__} {exc}") from None
                if reply.status != "ok":
                    raise JudgeError(f"the reference failed hidden case {case.key}: "
                                     f"{reply.error}: {reply.message}")
                outputs = reply.outputs
                bad = [k for k, v in outputs.items()
                       if v.dtype.kind == "f" and not np.all(np.isfinite(v))]
                if bad:
                    raise JudgeError(f"the reference's output {bad} of case {case.key} "
                                     "is not finite")
                passed, message = verdict(case, inputs, reply, "") if case.verdict else (True, "")
                if not passed:
                    raise JudgeError(f"the reference failed hidden case {case.key}: {message}")
                results[case.key] = (inputs, outputs)
        finally:
            worker.stop()
    _EXPECTED[key] = results
    return results


def _request(case, inputs):
    return wire.Request(case.probe, inputs)


def _reply_limit(outputs):
    return 4 * sum(v.nbytes for v in outputs.values()) + (1 << 20)


# --------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------
def judge_package(student_pkg_dir, *, budget=TimeBudget(), memory_mb=2048, tasks=None,
                  reference_pkg_dir=None):
    """Judge the student's cs231n package (student_pkg_dir/cs231n) case by case.

    budget: budget.judge_case wall-clock seconds per case (and for importing the package),
    budget.judge_total for the whole submission (cases left over fail), budget.judge_boot for
    the worker's own start. memory_mb: address-space limit of the worker. tasks: judge only
    these tasks (default all). reference_pkg_dir: folder holding the reference cs231n (default:
    the instructor's tree). The worker runs in a bubblewrap sandbox that sees only a copy of the
    package's .py files, the interpreter and site-packages; BwrapMissing without bwrap.
    Returns one CaseResult per hidden case, in the order of cases_for().
    """
    start = time.monotonic()
    _sandbox.bwrap()  # refuse before any work when there is no sandbox
    reference_pkg_dir = Path(reference_pkg_dir or ROOT).resolve()
    student_pkg_dir = Path(student_pkg_dir).resolve()
    cases = cases_for(reference_pkg_dir)
    if tasks is not None:
        unknown = set(tasks) - {c.task for c in cases}
        if unknown:
            raise JudgeError(f"no such tasks: {sorted(unknown)}")
        cases = [c for c in cases if c.task in set(tasks)]
    expected = expected_outputs(reference_pkg_dir, cases, _salt(), budget)
    results = []
    with _sandboxed_run(student_pkg_dir, "cs231n-judge-", budget, memory_mb,
                        start + budget.judge_total) as run:
        for case in cases:
            inputs, outputs = expected[case.key]
            where = f"for {case.describe(inputs)}" if case.describe(inputs) else ""
            passed, message = run.judge(case, inputs, outputs, where)
            results.append(CaseResult(case.task, case.name, case.points if passed else 0.0,
                                      case.points, passed, message.strip()))
    return results


@contextlib.contextmanager
def _sandboxed_run(student_pkg_dir, prefix, budget, memory_mb, deadline):
    """A _Run on a copy of the student's package (in a scratch folder named prefix...), its
    worker in a bwrap sandbox and a RunGroup as the student run's user; on leaving, the worker,
    the group and every process of that user end, and the scratch folder goes."""
    uid, gid = _sandbox.student_user()
    limits = _limits(budget, memory_mb)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        w, found = _prepare(tmp, student_pkg_dir)
        box = _sandbox.Sandbox(cwd=str(w), ro=(str(w),), uid=uid, gid=gid, limits=limits)
        group = _sandbox.RunGroup(limits.group_memory_mb, limits.nproc)
        run = _Run(Worker(w, limits, box, Path(tmp) / "stderr", budget.judge_boot, group), deadline,
                   budget, None if found else "no cs231n package found in the submission")
        try:
            yield run
        finally:
            run.worker.stop()
            group.close()
            _sandbox.end_user_processes(uid)


class _Run:
    """The judging of one submission: one worker at a time, restarted after a case kills it."""

    def __init__(self, worker, deadline, budget, broken):
        self.worker, self.deadline, self.budget, self.broken = worker, deadline, budget, broken
        self.running = False

    def judge(self, case, inputs, outputs, where):
        """(passed, message) for one case: its verdict, or a comparison with the reference's."""
        reply, failure = self.ask(case, inputs, self.budget.judge_case, _reply_limit(outputs), where)
        if failure:
            return False, failure
        if case.verdict:
            return verdict(case, inputs, reply, where)
        if case.summary:
            reply, outputs = summarized(case, inputs, reply), case.summary(inputs, outputs)
        return compare(case, reply, outputs, where)

    def ask(self, case, inputs, case_timeout, max_bytes, where):
        """(the worker's reply, None), or (None, why there is none) for one case."""
        if self.broken:
            return None, self.broken
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None, f"not judged: the submission used up its {self.budget.judge_total:g} s"
        if not self.running:
            try:
                self.worker.start(min(self.budget.judge_case, left))
            except ImportBroken as exc:
                self.broken = f"could not import the package: {exc}"
                return None, self.broken
            self.running = True
            left = self.deadline - time.monotonic()
        timeout = min(case_timeout, max(left, 0.1))
        try:
            return self.worker.ask(_request(case, inputs), timeout, max_bytes), None
        except CaseTimeout:
            self._restart()
            return None, f"timed out after {timeout:g} s {where}"
        except WorkerGone as exc:
            self._restart()
            return None, f"the process running your code {exc} {where}"

    def _restart(self):
        self.worker.stop()
        self.running = False


def _limits(budget, memory_mb):
    return _sandbox.Limits(cpu_seconds=budget.judge_total + budget.judge_case + 5, memory_mb=int(memory_mb))


# --------------------------------------------------------------------------------------------
# Re-checks of notebook cells (case.Recheck)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecheckResult:
    """The verdict on one re-check; the message is made by the grader, for the feedback."""

    name: str
    passed: bool
    message: str


def rechecks_named(names):
    """The re-checks of autograder/hidden/cases.py RECHECKS with these names; JudgeError for a
    name that has none (a notebook cell naming a re-check nobody wrote)."""
    from autograder.hidden.cases import RECHECKS

    by_name = {r.name: r for r in RECHECKS}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise JudgeError(f"notebook cells name re-checks that do not exist: {', '.join(unknown)}; "
                         "add them to RECHECKS in autograder/hidden/cases.py")
    return [by_name[n] for n in sorted(set(names))]


def recheck_package(student_pkg_dir, names, *, budget=TimeBudget(), memory_mb=2048,
                    reference_pkg_dir=None):
    """Run the named re-checks on the student's package (student_pkg_dir/cs231n), in the same
    kind of worker as the hidden cases, each within its own `seconds` (and budget.judge_boot for
    the worker's start).

    Returns one RecheckResult per name, sorted by name. A re-check without a verdict passes when
    its outputs match the reference's (as a case does); one with a verdict passes when the
    verdict, run here on the returned arrays, says so.
    """
    rechecks = rechecks_named(names)
    if not rechecks:
        return []
    _sandbox.bwrap()  # refuse before any work when there is no sandbox
    reference_pkg_dir = Path(reference_pkg_dir or ROOT).resolve()
    student_pkg_dir = Path(student_pkg_dir).resolve()
    compared = [r for r in rechecks if r.verdict is None]
    expected = expected_outputs(reference_pkg_dir, compared, _salt(), budget) if compared else {}
    total, longest = sum(r.seconds for r in rechecks), max(r.seconds for r in rechecks)
    own = replace(budget, judge_case=longest, judge_total=total)
    results = []
    with _sandboxed_run(student_pkg_dir, "cs231n-recheck-", own, memory_mb,
                        time.monotonic() + total + budget.judge_boot) as run:
        for recheck in rechecks:
            passed, message = _recheck_one(run, recheck, expected)
            results.append(RecheckResult(recheck.name, passed, message.strip()))
    return results


def _recheck_one(run, recheck, expected):
    if recheck.verdict is None:
        inputs, outputs = expected[recheck.key]
        return run.judge(recheck, inputs, outputs, "")
    inputs = recheck.inputs(_salt())
    reply, failure = run.ask(recheck, recheck.sent(inputs), recheck.seconds, 64 << 20, "")
    return (False, failure) if failure else verdict(recheck, inputs, reply, "")
