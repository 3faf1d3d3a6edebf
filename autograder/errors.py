"""Failures of the grader itself (never a student's score), raised in one stage and handled in
another: defined here, below every stage, so that handling one needs no import of its raiser."""


class JudgeError(RuntimeError):
    """The judge itself is broken or misconfigured (never the student's fault): a task without
    cases, a reference that fails its own case, a worker that cannot start."""


class ZygoteFailed(RuntimeError):
    """The nbgrader zygote itself died or stopped answering (not the run: that is a return code)."""


# nbgrader's exit status when its run could not be set up (run.enter_run failed in the nbgrader
# zygote's child), before any notebook ran; nbgrader itself exits 0 or 1 (sysexits' EX_TEMPFAIL)
RUN_NOT_SET_UP = 75
