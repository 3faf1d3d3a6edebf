"""The machine's processes as /proc shows them, for tests of what a grading run leaves behind."""
from pathlib import Path


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


def alive(entry):
    """Whether the process of /proc entry `entry` is not a zombie (dead, not collected yet)."""
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
