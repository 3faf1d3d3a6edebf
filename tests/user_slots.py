"""User slots for tests that run code as a student run's user (sandbox.student_user(slot)).

A test ends every process of the users it used, so two tests running at once (one per
pytest-xdist worker) must never share a user, and no test may share one with a real grading
run, whose slots are pids (below 2**22, the kernel's highest pid_max). Each worker owns
PER_WORKER slots of its own above that.
"""
import os

PER_WORKER = 16  # UID_BASE + the highest slot stays below 2**31


def slot(k):
    """This test process's k-th user slot (0 <= k < PER_WORKER)."""
    if not 0 <= k < PER_WORKER:
        raise ValueError(f"slot {k} is outside 0..{PER_WORKER - 1}; a worker owns {PER_WORKER} slots")
    return 2**22 + os.getpid() * PER_WORKER + k
