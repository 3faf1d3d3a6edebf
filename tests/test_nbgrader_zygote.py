"""autograder.notebooks.nbgrader_zygote: nbgrader runs forked from a process that imported it once.

The runs here are real nbgrader command lines; a `nbgrader_config.py` in the run's folder
(nbgrader loads it from there) stands for a run that hangs or leaves processes behind."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_tree import ended, pids_where, running

from autograder.budget import TimeBudget
from autograder.notebooks import nbgrader_zygote
from autograder.notebooks import run as nb_run
from autograder.config import ROOT
from autograder.sandbox import bubblewrap as sandbox
from autograder.sandbox.bubblewrap import isolation_available
from user_slots import slot

SLOT = slot(8)
HANG = '''import os, subprocess, time
from pathlib import Path
Path("pid").write_text(str(os.getpid()))
subprocess.Popen(["sleep", "{marker}"])
time.sleep(600)
'''


def _run(args, cwd, tmp_path, budget=TimeBudget(notebook=60, run_slack=60)):
    run = nb_run.NbgraderRun(args, {})
    log = tmp_path / "nbgrader.log"
    code, timed_out = nbgrader_zygote.run_nbgrader(run, cwd=cwd, log_path=log, env=dict(os.environ),
                                                  budget=budget, notebooks=1)
    return code, timed_out, log.read_text() if log.exists() else ""


def _processes_with(marker):
    return pids_where(lambda entry: marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())


def test_a_run_is_nbgrader_and_the_zygote_is_reused(tmp_path):
    import nbgrader

    code, timed_out, log = _run(["--version"], ROOT, tmp_path)
    assert (code, timed_out) == (0, False)
    assert nbgrader.__version__ in log
    first = [z.proc.pid for z in nbgrader_zygote._idle]
    code, _, log = _run(["autograde", "nosuch", f"--CourseDirectory.root={tmp_path / 'none'}"], tmp_path, tmp_path)
    assert code == 1, "a failing nbgrader must fail as `python -m nbgrader` does (exit 1)"
    assert [z.proc.pid for z in nbgrader_zygote._idle] == first, "the idle zygote was not reused"


def test_a_run_past_its_timeout_is_killed_with_all_it_started(tmp_path):
    marker = f"{time.time() % 1000 + 1000:.3f}"
    (tmp_path / "nbgrader_config.py").write_text(HANG.format(marker=marker))
    started = time.monotonic()
    code, timed_out, _ = _run(["autograde", "a2"], tmp_path, tmp_path, TimeBudget(notebook=1, run_slack=2))
    assert timed_out and code != 0
    assert time.monotonic() - started < 30
    pid = int((tmp_path / "pid").read_text())
    for _ in range(50):
        if not _processes_with(f"sleep {marker}"):
            break
        time.sleep(0.1)
    assert not _processes_with(f"sleep {marker}"), "the run's child outlived the timeout"
    if not isolation_available():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.skipif(os.geteuid() != 0 or not isolation_available(), reason="the run's tmpfs needs root, the sandbox bwrap")
def test_an_isolated_run_has_its_tmpfs_and_its_kernel_zygote_in_the_sandbox(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "import json, os\nfrom pathlib import Path\n"
        "mount = os.environ['KERNELS_MOUNT']\n"
        "def zygote_uid(p):  # None unless p is a zygote (a process may end while we look)\n"
        "    try:\n"
        "        argv = (p / 'cmdline').read_bytes()\n"
        "        if b'kernel_zygote.py' in argv and b'bwrap' not in argv:\n"
        "            return (p / 'status').read_text().split('Uid:')[1].split()[0]\n"
        "    except OSError:\n"
        "        return None\n"
        "uids = [u for p in Path('/proc').iterdir() if p.name.isdigit() for u in [zygote_uid(p)] if u]\n"
        "os.symlink(mount + '/code', mount + '/runtime/planted')\n"  # as a kernel may, for nbgrader
        "Path('seen').write_text(json.dumps([os.path.ismount(mount), sorted(os.listdir(mount)), "
        "sorted(os.listdir(mount + '/zygote')), uids, os.path.exists(mount + '/runtime/planted')]))\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # autograde loads the config file of the run's folder, then fails: there is no course
    with nb_run.sandboxed_nbgrader(["autograde", "a2"], run_dir, uid_slot=SLOT) as run:
        run.env["KERNELS_MOUNT"] = nb_run.KERNELS_MOUNT
        nbgrader_zygote.run_nbgrader(run, cwd=tmp_path, log_path=tmp_path / "log", env=dict(os.environ),
                                     budget=TimeBudget(notebook=60, run_slack=60), notebooks=1)
    mounted, listing, runtime, uids, followed = json.loads((tmp_path / "seen").read_text())
    assert mounted, "the run's tmpfs is not mounted"
    assert not followed, "nbgrader followed a link on the run's tmpfs (it must be mounted nosymfollow)"
    assert listing == ["code", "logs", "nbgrader", "runtime", "zygote"], \
        "the run's tmpfs holds the zygote's code, the kernels' logs, nbgrader's runtime, the kernels' ipc folder " \
        "and the zygote's"
    assert runtime == ["kernel-zygote.sock"], "the zygote listens in its own folder"
    uid = sandbox.student_user(SLOT)[0]
    # other graders' zygotes (other tests on this machine) may show too: this run's is there, as its user
    assert str(uid) in uids and all(int(u) >= sandbox.UID_BASE for u in uids), \
        "the kernel zygote runs in the sandbox, as the run's user"
    assert not os.path.ismount(nb_run.KERNELS_MOUNT), "the run's tmpfs leaked to the machine"
    assert not pids_where(lambda e: e.stat().st_uid == uid and running(e)), "a process of the run's user outlived it"


def test_a_dead_zygote_is_replaced(tmp_path):
    _run(["--version"], ROOT, tmp_path)
    for zygote in nbgrader_zygote._idle:
        os.kill(zygote.proc.pid, signal.SIGKILL)
        zygote.proc.wait()
    code, _, _ = _run(["--version"], ROOT, tmp_path)
    assert code == 0


def test_the_zygote_dies_with_the_process_that_started_it(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", ("from autograder.notebooks.nbgrader_zygote import Zygote\n"
                                "import time\nz = Zygote()\nprint(z.proc.pid, flush=True)\ntime.sleep(600)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    zygote_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(100):
        if ended(zygote_pid):  # gone, or a zombie until its parent's parent reaps it
            return
        time.sleep(0.1)
    pytest.fail("the zygote outlived the process that started it")
