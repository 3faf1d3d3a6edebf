"""Issue 19, finding 6: the gradebook's password is never on a command line, nor anywhere another
user of the machine can read it.

With `--db-url postgresql://grader:PASSWORD@...`, user nobody read the password from
/proc/PID/cmdline of the coordinator and its pool workers. Now such a --db-url is refused, saying
where the password goes; real runs against a real PostgreSQL (password authentication) with the
password in $PGPASSFILE or the whole URL in $CS231N_DB_URL are watched by a process running as
nobody that reads /proc/*/cmdline and /proc/*/environ of every process throughout, and by a
root-side scan: only the coordinator, its pool workers and their root helpers hold it, never a
process that handles student data (kernels, judges, nbgrader, zygotes)."""
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from as_user import NOBODY, become, run_cli_as
from course_fixtures import make_small_class, make_toy_source, toy_notebook
from services import postgres_bin, postgres_server

from autograder.config import ROOT, Course

PASSWORD = "pw-7f3a9c-not-on-any-command-line"
MAIN = b"-m\0autograder\0"  # the coordinator's command line, which its forked pool workers share


def _autograder(args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("CS231N_DB_URL", "PGPASSWORD", "PGPASSFILE")}
    return {**env, **extra}


@pytest.mark.parametrize("flags", [
    ["--db-url", f"postgresql+psycopg2://grader:{PASSWORD}@127.0.0.1:5999/gradebook"],
    [f"--db-url=postgresql://grader:{PASSWORD}@db.example.org/gradebook"],
    ["--db-url", f"postgresql://grader@db.example.org/gradebook?sslmode=require&password={PASSWORD}"],
])
def test_a_password_in_db_url_is_refused_saying_where_it_goes_and_nothing_is_done(tmp_path, flags):
    subs = tmp_path / "subs" / "ann"
    subs.mkdir(parents=True)
    nbformat.write(toy_notebook(), subs / "Toy.ipynb")
    course = tmp_path / "course"
    proc = _autograder(["--course", str(course), *flags, "grade", str(subs.parent), "--workers", "1"], _clean_env())
    assert proc.returncode == 2, proc.stderr
    message = " ".join(proc.stderr.split())
    assert message.startswith("grade: --db-url holds a password, and every user of this machine can read a "
                              "command line"), message
    for hint in ("nothing was done", "~/.pgpass", "$PGPASSFILE", "CS231N_DB_URL", "chmod 600", "change the password",
                 "--db-url postgresql"):
        assert hint in message, hint
    assert PASSWORD not in proc.stdout + proc.stderr
    assert not course.exists()  # nothing collected, graded or recorded


def test_a_url_that_cannot_be_read_is_refused_without_echoing_it(tmp_path):
    proc = _autograder(["--course", str(tmp_path / "course"), "--db-url",
                        f"postgresql://grader:{PASSWORD}@host:port/gradebook", "export"], _clean_env())
    assert proc.returncode == 2
    assert "--db-url is not a database URL" in proc.stderr and PASSWORD not in proc.stderr
    assert not (tmp_path / "course").exists()


def test_the_sudo_hint_names_the_gradebook_s_variables_never_their_values():
    """Refused without root, `grade` prints the sudo command to run instead; sudo drops the
    environment, so the hint keeps CS231N_DB_URL and PGPASSFILE, by name only."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    folder = Path(tempfile.mkdtemp(prefix="cs231n-secret-hint-", dir="/tmp"))  # tmp_path is root's only
    try:
        os.chown(folder, NOBODY, NOBODY)
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(folder), "PGPASSFILE": str(folder / "pgpass"),
               "CS231N_DB_URL": f"postgresql://grader:{PASSWORD}@db.example.org/gradebook"}
        code, output = run_cli_as(NOBODY, ["--course", str(folder / "course"), "grade", "--workers", "1"], env,
                                  folder / "output.txt")
        assert code == 4, output
        assert f"sudo --preserve-env=CS231N_DB_URL,PGPASSFILE {sys.executable} -m autograder --course" in output, output
        assert PASSWORD not in output
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _scan_proc(needle, stop, out, extra_paths):
    """In a fork running as nobody: read every /proc/*/cmdline and /proc/*/environ until `stop`
    is readable, then write a JSON report to `out`."""
    hits, autograder_pids, readable_environ = set(), set(), set()
    while not select.select([stop], [], [], 0.05)[0]:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{name}", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if needle in data:
                    hits.add(f"/proc/{pid}/{name}: {data[:300]!r}")
                if name == "environ":
                    readable_environ.add(pid)
                elif MAIN in data:
                    autograder_pids.add(pid)
    files = {}
    for path in extra_paths:
        try:
            files[path] = needle in Path(path).read_bytes()
        except OSError as error:
            files[path] = type(error).__name__
    os.write(out, json.dumps({"hits": sorted(hits), "autograder_pids": len(autograder_pids),
                              "readable_environ": len(readable_environ), "files": files}).encode())


def _may_hold(cmdline, parent_cmdline):
    """A process that may hold the URL in its environment: the coordinator or a pool worker
    (command line MAIN), or a root helper they start that handles no student data (nbgrader's
    Gradebook runs `alembic heads` on a new gradebook); never a zygote or a sandbox."""
    if MAIN in cmdline:
        return True
    return MAIN in parent_cmdline and not any(mark in cmdline for mark in (b"zygote", b"bwrap", b"setpriv"))


def _scan_as_root(needle, stopped, found):
    """No process's command line holds needle, and its environment only where _may_hold allows,
    as root. found: {"hits", "sandboxed": pids of sandboxed kernel zygotes seen}."""
    from process_tree import stat_fields

    while not stopped.wait(0.05):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
                uid = entry.stat().st_uid
                parent = Path(f"/proc/{stat_fields(entry)[1]}/cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            if uid != 0 and b"kernel_zygote" in cmdline:
                found["sandboxed"].add(entry.name)
            if needle in cmdline or (needle in environ and not (uid == 0 and _may_hold(cmdline, parent))):
                found["hits"].add(f"{entry}: {cmdline[:200]!r}")


@contextlib.contextmanager
def watching(needle, extra_paths=()):
    """Yield a dict that, after the block, holds what nobody and root saw of needle in /proc."""
    report = {}
    stop_r, stop_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(stop_w)
            os.close(out_r)
            become(NOBODY)
            _scan_proc(needle, stop_r, out_w, extra_paths)
        finally:
            os._exit(0)
    os.close(stop_r)
    os.close(out_w)
    stopped, as_root = threading.Event(), {"hits": set(), "sandboxed": set()}
    thread = threading.Thread(target=_scan_as_root, args=(needle, stopped, as_root), daemon=True)
    thread.start()
    try:
        yield report
    finally:
        stopped.set()
        os.close(stop_w)
        with os.fdopen(out_r, "rb") as out:
            data = out.read()
        os.waitpid(pid, 0)
        thread.join(30)
        report.update(json.loads(data or b"{}"), root_hits=sorted(as_root["hits"]),
                      sandboxed=len(as_root["sandboxed"]))


@pytest.mark.slow
@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (Debian package postgresql)")
def test_another_user_reading_proc_during_real_runs_finds_no_password(tmp_path):
    from nbgrader.api import Gradebook
    from sqlalchemy.engine import make_url

    from autograder.release.build import build_release

    if os.geteuid() != 0:
        pytest.skip("grading and switching to user nobody need root")
    with postgres_server() as url:
        right = make_url(url)
        needle = right.password.encode()
        bare = right._replace(password=None).render_as_string(hide_password=False)
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"{right.host}:{right.port}:{right.database}:{right.username}:{right.password}\n")
        pgpass.chmod(0o600)
        course = Course(root=tmp_path / "course", db_url=url, source_root=make_toy_source(tmp_path / "src"))
        make_small_class(course.source, build_release(course), tmp_path / "subs", reference=("ref1",),
                         starter=("st1",))
        command = ["--course", str(course.root), "--source", str(course.source_root)]
        runs = {"the URL without its password, the password in $PGPASSFILE":
                (["--db-url", bare], {"PGPASSFILE": str(pgpass)}),
                "the whole URL in $CS231N_DB_URL": ([], {"CS231N_DB_URL": url})}
        for label, (flags, env) in runs.items():
            with watching(needle, [str(pgpass)]) as seen:
                proc = _autograder([*command, *flags, "grade", str(tmp_path / "subs"), "--workers", "2", "--force"],
                                   _clean_env(**env), timeout=900)
            assert proc.returncode == 0, (label, proc.stdout[-2000:], proc.stderr[-2000:])
            assert "graded 2 submissions" in proc.stdout, label
            assert needle.decode() not in proc.stdout + proc.stderr, label
            assert seen["hits"] == [] and seen["root_hits"] == [], (label, seen)
            # nobody did see the run: the coordinator and both pool workers, and sandboxed kernels
            assert seen["autograder_pids"] >= 3 and seen["sandboxed"] >= 1, (label, seen)
            assert seen["files"] == {str(pgpass): "PermissionError"}, label
        with Gradebook(url) as gb:  # graded into PostgreSQL
            assert gb.find_submission("a2", "ref1").score > gb.find_submission("a2", "st1").score
    for path in course.root.rglob("*"):  # nor is it in any file of the course folder
        if path.is_file():
            assert needle not in path.read_bytes(), path
