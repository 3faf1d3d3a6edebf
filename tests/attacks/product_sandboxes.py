"""The product's own sandboxes, for the attack tests: what a test runs inside them is exactly
what the grader would run student code in, so weakening the product weakens these views.

- kernel_run: a run's shared folder laid out by notebook_run.enter_run (its real zygote
  started), and notebook_run.run_sandbox, the sandbox every kernel of the run lives in;
- judge_run: grader._sandboxed_run over a submission's package, the judge worker's sandbox;
- real_zygote: a kernel zygote a test asks for kernels, as a launcher does;
- run_code: student code run in one of them.
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

from autograder.budget import TimeBudget
from autograder.judge import grader
from autograder.notebooks import kernel_zygote, launcher
from autograder.notebooks import run as notebook_run
from autograder.sandbox import bubblewrap as sandbox
from user_slots import slot

PYTHON = os.path.realpath(sys.executable)
SLOT_A, SLOT_B = slot(0), slot(1)  # users of two concurrently graded students
SLOT_RUN = slot(9)  # the kernel run the attack tests share (conftest.run_spec; never ended by a test)


def run_code(box, code, *args, timeout=120, group=None, env=None):
    """Run `code` with this interpreter inside box; returns (returncode, stdout + stderr)."""
    proc = sandbox.sandboxed_popen([PYTHON, "-I", "-S", "-c", textwrap.dedent(code), *map(str, args)], box,
                                   group=group, env=env or {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        sandbox.kill_tree(proc)
    return proc.returncode, out


def package(folder):
    """folder, holding an empty submitted cs231n package."""
    (folder / "cs231n").mkdir(parents=True)
    (folder / "cs231n" / "__init__.py").write_text("")
    return folder


@contextmanager
def kernel_run(tmp_path, slot):
    """A student run's kernel side, set up by the product (notebook_run.enter_run, without the
    run's tmpfs: tmp_path/shared stands for it). Yields (spec, the zygote's address)."""
    tmp_path.chmod(0o755)
    shared, logs = tmp_path / "shared", tmp_path / "logs"
    shared.mkdir(mode=0o711)
    logs.mkdir()
    uid, gid = sandbox.student_user(slot)
    limits = sandbox.Limits(**notebook_run.KERNEL_LIMITS)
    group = sandbox.RunGroup(limits.group_memory_mb, limits.nproc)
    spec = notebook_run.RunSpec(uid=uid, gid=gid, limits=limits, env={}, shared=str(shared), tmpfs=False,
                                group=[str(f) for f in group.folders], logs=str(logs))
    spec.save(tmp_path / "spec.json")
    try:
        address = notebook_run.enter_run(str(tmp_path / "spec.json")).get(kernel_zygote.SOCKET_ENV)
        yield spec, address
    finally:
        group.close()
        sandbox.end_user_processes(uid)


def kernel_box(spec, notebook_dir=None):
    """(the product's kernel sandbox, working in a fresh kernel work folder made as the launcher
    makes it from notebook_dir, that folder)."""
    work = tempfile.mkdtemp(prefix="work-", dir=spec.shared)
    if notebook_dir is not None:
        launcher._copy_workdir(notebook_dir, work)
    launcher._chown_tree(work, spec.uid, spec.gid)
    return dataclasses.replace(notebook_run.run_sandbox(spec), cwd=work), Path(work)


@contextmanager
def judge_run(student_pkg_dir, slot, memory_mb=2048, budget=TimeBudget()):
    """The judge's worker sandbox over student_pkg_dir/cs231n, as judge_package sets it up, as
    the user of slot. Yields the grader's Worker (not started): its box, group and folder w."""
    with grader._sandboxed_run(Path(student_pkg_dir).resolve(), "cs231n-judge-", budget, memory_mb,
                               time.monotonic() + budget.judge_total, uid_slot=slot) as run:
        yield run.worker


@contextmanager
def judged(tmp_path, slot, name="student"):
    """The judge's own sandbox (judge_run) for one student of user slot: (box, w)."""
    with judge_run(package(tmp_path / name), slot) as worker:
        yield worker.box, worker.w


@contextmanager
def real_zygote(tmp_path, slot):
    """A run's real kernel zygote (kernel_run). Yields (start, uid, logs): start(code) asks it
    for a kernel whose start-up runs code, as a launcher outside the sandbox does, and returns
    (connection, pidfd, the kernel's work folder)."""
    with kernel_run(tmp_path, slot) as (spec, address):
        uid, gid, shared, logs = spec.uid, spec.gid, Path(spec.shared), Path(spec.logs)

        def start(code):
            work = shared / "work-1"
            work.mkdir()
            os.chown(work, uid, gid)
            connection = work / "kernel.json"
            connection.write_text(json.dumps({
                "transport": "ipc", "ip": str(shared / notebook_run.IPC_FOLDER / "k"), "shell_port": 1,
                "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": "k",
                "signature_scheme": "hmac-sha256"}))
            os.chown(connection, uid, gid)
            log = os.open(logs / "kernel.log", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                conn, pidfd = kernel_zygote.request_kernel(address, kernel_zygote.KernelRequest(
                    cwd=str(work), env=notebook_run._kernel_env(spec.env, work),
                    argv=["-f", str(connection), "--HistoryManager.hist_file=:memory:",
                          f"--IPKernelApp.exec_lines={[code]!r}"]), log)
            finally:
                os.close(log)
            return conn, pidfd, work

        yield start, uid, logs
