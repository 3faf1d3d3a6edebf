"""The function-level judge: each student task scored on hidden cases, outside the student's
process, in a bubblewrap sandbox; only the grader decides whether an output is right.

    results = judge_package("submitted/alice/a2", budget=TimeBudget())  # alice's cs231n/

docs/judge.md gives the threat model, the protocol and one line per module.
"""
from autograder.hidden.case import Case
from autograder.judge.grader import CaseResult, JudgeError, RecheckResult, cases_for, judge_package, recheck_package

__all__ = ["Case", "CaseResult", "JudgeError", "RecheckResult", "cases_for", "judge_package", "recheck_package"]
