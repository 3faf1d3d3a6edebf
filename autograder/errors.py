"""Failures of the grader itself (never a student's score), raised in one stage and handled in
another: defined here, below every stage, so that handling one needs no import of its raiser."""


class JudgeError(RuntimeError):
    """The judge itself is broken or misconfigured (never the student's fault): a task without
    cases, a reference that fails its own case, a worker that cannot start."""


class ZygoteFailed(RuntimeError):
    """The nbgrader zygote itself died or stopped answering (not the run: that is a return code)."""
