"""The machine's processes as /proc shows them, for the tests and bench/kill9.py that kill a
run, or end a sandbox, and look for what it left."""
from collections import namedtuple
from pathlib import Path

Process = namedtuple("Process", "ppid started state cmdline")


def processes():
    """{pid: Process} of every process of the machine (started: its start time in clock ticks,
    which tells it from a later process given the same pid; state "Z": dead, not reaped)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(entry)
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = Process(int(fields[1]), fields[19], fields[0], cmdline)
    return table


def stat_fields(entry):
    """The fields of /proc entry `entry`'s stat after the command name (state first, then ppid,
    pgrp, session, ...; proc(5) numbers them from 3). Raises OSError when the process is gone."""
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid, table=None):
    """The pids of every process below pid (children, theirs, ...)."""
    table = processes() if table is None else table
    children = {}
    for child, process in table.items():
        children.setdefault(process.ppid, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid, started, table=None):
    """True while the process pid that started at `started` runs (not dead, not a zombie)."""
    table = processes() if table is None else table
    process = table.get(pid)
    return process is not None and process.started == started and process.state != "Z"


def kernels(pids, table):
    """Of pids, the notebook kernels running: children of a kernel zygote (kernel_zygote.py)
    while a kernel launcher (launcher.py) waits (else a child of the zygote may be a fork
    made by one of its imports)."""
    if not any("launcher.py" in table[pid].cmdline for pid in pids if pid in table):
        return set()
    zygotes = {pid for pid in pids if pid in table and "kernel_zygote.py" in table[pid].cmdline}
    return {pid for pid in zygotes if table[pid].ppid in zygotes}


def pids_where(match):
    """The pids whose /proc entry satisfies match(entry); a process that is gone, or that we may
    not read, while match reads it does not count."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if match(entry):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def running(entry):
    """Whether the process of /proc entry `entry` is not a zombie (dead, not collected yet)."""
    return stat_fields(entry)[0] != "Z"


def ended(pid):
    """Whether process pid is gone or a zombie (dead, not collected yet); safe against its end
    while /proc is read."""
    try:
        return not running(Path(f"/proc/{pid}"))
    except (OSError, IndexError):
        return True


def cmdline(pid):
    """Process pid's command line as bytes (arguments joined by NUL), b"" when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
