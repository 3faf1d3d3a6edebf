"""Grades out: a CSV for the LMS, per-student results, and Gradescope's results.json.

Only the stored results go out (scores and grader-made messages, see autograder.feedback);
never an autograded notebook or nbgrader's log."""
import csv
import io
import json
from pathlib import Path

from .feedback import write_atomically
from .gradescope import cells_with_hidden_tests, results_json
from .results import not_graded, scores, stored_results

CSV_FIELDS = ["student_id", "score", "max_score", "notebook_score", "notebook_max", "function_score",
              "function_max", "manual_pending", "missing_files", "problems", "status"]


def rows(course):
    """One dict per student, the CSV's columns: graded ones with their scores, not graded ones
    (the grader failed; see autograder.results) with no number at all."""
    out = [{"student_id": sid, "status": "not graded", "problems": f"not graded: {failure.reason}"}
           for sid, failure in not_graded(course).items()]
    for sid, result in sorted(stored_results(course).items()):
        score, max_score, parts = scores(result)
        problems = []
        if not result.nbgrader_ok:
            problems.append("notebooks could not all be run")
        if result.judge_error:
            problems.append(result.judge_error)
        out.append({"student_id": sid, "score": round(score, 3), "max_score": round(max_score, 3),
                    **{k: round(v, 3) if isinstance(v, float) else v for k, v in parts.items()},
                    "missing_files": " ".join(result.missing_files), "problems": "; ".join(problems),
                    "status": "graded"})
    return sorted(out, key=lambda row: row["student_id"])


def grades_csv(course):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(course))
    return buffer.getvalue()


def export(course, out_dir):
    """Write out_dir/grades.csv, out_dir/results/<student>.json and
    out_dir/gradescope/<student>/results.json (as a Gradescope run writes it:
    autograder.gradescope.results_json); returns the CSV's path."""
    out_dir = Path(out_dir)
    write_atomically(out_dir / "grades.csv", grades_csv(course))
    hidden_cells = cells_with_hidden_tests(course.source)
    for sid, result in stored_results(course).items():
        stored = {k: v for k, v in json.loads(result.to_json()).items() if k != "nbgrader_log"}
        write_atomically(out_dir / "results" / f"{sid}.json", json.dumps(stored, indent=1))
        write_atomically(out_dir / "gradescope" / sid / "results.json", json.dumps(results_json(result, hidden_cells), indent=1))
    return out_dir / "grades.csv"
