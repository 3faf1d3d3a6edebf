"""Real services for the tests, started on 127.0.0.1 and always stopped: a PostgreSQL server from
Debian's package, and a Dask scheduler with workers. Every wait is bounded."""
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds, failure, every=0.1, ignoring=()):
    """Call predicate every `every` s until it returns true; TimeoutError("<failure> within
    <seconds> s") when it has not by then. An exception of a type in `ignoring` counts as false
    (a server that does not answer yet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except ignoring:
            pass
        time.sleep(every)
    raise TimeoutError(f"{failure} within {seconds} s")


def stop_group(proc, grace=15, after_kill=15):
    """End the process group that proc leads (started with start_new_session=True): SIGTERM,
    `grace` seconds to finish, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=after_kill)


def postgres_bin():
    """The folder of PostgreSQL's server binaries, or None when it is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def postgres_server():
    """Yield a SQLAlchemy URL of a fresh PostgreSQL database, served until the end.

    Password authentication only (scram-sha-256, local socket and TCP alike; never trust: with
    trust, any local process that reaches the socket owns the gradebook): the superuser and a
    `grader` role that owns the gradebook database each get a random password. Its files live in
    a fresh folder (mode 0700) under the system temp dir (pytest's own are private to root, and
    the server runs as the postgres user), removed afterwards.
    """
    import secrets
    import tempfile

    pg = postgres_bin()
    tmp = Path(tempfile.mkdtemp(prefix="cs231n-pg-"))  # mode 0700
    data, sock, pwfile = tmp / "pgdata", tmp / "pgsock", tmp / "superuser.pw"
    sock.mkdir(parents=True, mode=0o700)
    superuser, grader = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    pwfile.write_text(superuser + "\n")
    pwfile.chmod(0o600)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        for path in (tmp, sock, pwfile):
            shutil.chown(path, "postgres")
    port = free_port()
    subprocess.run(as_postgres + [str(pg / "initdb"), "-D", str(data), "--auth-local=scram-sha-256",
                                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-U", "postgres"],
                   check=True, capture_output=True)
    pwfile.unlink()
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(as_postgres + [str(pg / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "-o", options,
                                  "-l", str(tmp / "pg.log"), "start"], check=True, capture_output=True)
    try:
        # the SQL on stdin: a password in psql's arguments is on a command line, which every user reads
        psql = ["psql", "-h", str(sock), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        sql = f"CREATE ROLE grader LOGIN PASSWORD '{grader}';\nCREATE DATABASE gradebook OWNER grader;\n"
        subprocess.run(psql, input=sql, text=True, check=True, capture_output=True,
                       env={**os.environ, "PGPASSWORD": superuser})
        yield f"postgresql+psycopg2://grader:{grader}@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(as_postgres + [str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def dask_cluster(tmp, workers=2, pythonpath=None):
    """Yield the address of a real Dask scheduler with `workers` single-threaded workers.

    pythonpath: where the workers find the code they run (the project folder, for autograder).
    """
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    scheduler_file = tmp / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    procs = []

    def start(argv):
        procs.append(subprocess.Popen(argv, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / f"dask-{len(procs)}.log", "w"), start_new_session=True))

    start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
           "--scheduler-file", str(scheduler_file)])
    try:
        wait_until(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, 60,
                   "the dask scheduler did not come up")
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            start([str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                   "--local-directory", str(tmp / f"worker-{i}")])
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            stop_group(proc)
