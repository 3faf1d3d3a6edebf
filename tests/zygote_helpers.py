"""A student run's real kernel zygote for the red-team tests, started as a grading run starts
it (run.enter_run), without the run's tmpfs."""
import json
import os
from contextlib import contextmanager

from autograder.notebooks import kernel_zygote
from autograder.notebooks import run as kernel_run
from autograder.sandbox import bubblewrap as sandbox


@contextmanager
def real_zygote(tmp_path, slot):
    """A run's real kernel zygote (run.enter_run, without the run's tmpfs). Yields
    (start, uid, logs): start(code) asks it for a kernel whose start-up runs code, as a launcher
    outside the sandbox does, and returns (connection, pidfd, the kernel's work folder)."""
    tmp_path.chmod(0o755)
    shared, logs = tmp_path / "shared", tmp_path / "logs"
    shared.mkdir(mode=0o711)
    logs.mkdir()
    uid, gid = sandbox.student_user(slot)
    limits = sandbox.Limits(**kernel_run.KERNEL_LIMITS)
    group = sandbox.RunGroup(limits.group_memory_mb, limits.nproc)
    spec = {"uid": uid, "gid": gid, "limits": limits.__dict__, "env": {}, "shared": str(shared), "tmpfs": False,
            "group": [str(f) for f in group.folders], "logs": str(logs)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))

    def start(code):
        work = shared / "work-1"
        work.mkdir()
        os.chown(work, uid, gid)
        connection = work / "kernel.json"
        connection.write_text(json.dumps({
            "transport": "ipc", "ip": str(shared / "runtime" / "k"), "shell_port": 1, "iopub_port": 2,
            "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": "k", "signature_scheme": "hmac-sha256"}))
        os.chown(connection, uid, gid)
        log = os.open(logs / "kernel.log", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            conn, pidfd = kernel_zygote.request_kernel(address, kernel_zygote.KernelRequest(
                str(work), kernel_run._kernel_env(spec["env"], work),
                ["-f", str(connection), "--HistoryManager.hist_file=:memory:",
                 f"--IPKernelApp.exec_lines={[code]!r}"]), log)
        finally:
            os.close(log)
        return conn, pidfd, work

    try:
        address = kernel_run.enter_run(str(tmp_path / "spec.json"))[kernel_zygote.SOCKET_ENV]
        yield start, uid, logs
    finally:
        group.close()
        sandbox.end_user_processes(uid)
