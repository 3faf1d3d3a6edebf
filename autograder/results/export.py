"""Grades out: a CSV for the LMS, the class report, per-student results, and Gradescope's results.json.

Only the stored results go out (scores and grader-made messages, see autograder.results.feedback);
never an autograded notebook or nbgrader's log."""
import csv
import io
import json
from pathlib import Path

from autograder.results.causes import causes, import_sentences, notebook_causes
from autograder.results.evidence import NOT_ANSWERED
from autograder.results.feedback import write_atomically
from autograder.results.hand_grades import graded_results, hand_graded
from autograder.results.store import not_graded, problems, scores
from autograder.results.scale import FUNCTIONS_SENTENCE

CSV_FIELDS = ["student_id", "score", "max_score", "extra_credit", "manual_pending", "function_cases_passed",
              "function_cases", "missing_files", "problems", "status"]


def rows(results, failures):
    """One dict per student, the CSV's columns: graded ones ({student: GradeResult}) with their
    scores, not graded ones ({student: NotGraded}: the grader failed, see autograder.results.store)
    with no number at all."""
    out = [{"student_id": sid, "status": "not graded", "problems": f"not graded: {failure.reason}"}
           for sid, failure in failures.items()]
    out += [row(result) for result in results.values()]
    return sorted(out, key=lambda r: r["student_id"])


def row(result):
    """The CSV's row of one graded result."""
    score, max_score, parts = scores(result)
    return {"student_id": result.student_id, "score": round(score, 3), "max_score": round(max_score, 3),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in parts.items()},
            "missing_files": " ".join(result.missing_files), "problems": "; ".join(problems(result)),
            "status": "graded"}


def grades_csv(results, failures):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows(results, failures))
    return buffer.getvalue()


def cells_with_hidden_tests(source_dir):
    """{(notebook name, grade_id)} of the source notebooks' cells that hold hidden tests."""
    import nbformat

    found = set()
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id and "BEGIN HIDDEN TESTS" in cell.source:
                found.add((path.stem, grade_id))
    return found


def _status_tests(result):
    """Gradescope tests, visible at once and worth nothing, that say how each notebook ran and
    which file of the package does not import (what a student needs before publishing)."""
    tests = []
    for nb in result.notebooks:
        said = notebook_causes(nb, result)
        tests.append({"name": f"{nb['notebook']}: how it ran", "score": 0.0, "max_score": 0.0, "visibility": "visible",
                      "status": "failed" if said else "passed", "tags": ["status"],
                      "output": " ".join(said) or f"{nb['notebook']} ran to its end."})
    for sentence in import_sentences(result.functions):
        tests.append({"name": f"your package: {sentence.split(' does not import')[0].split(' ', 2)[-1]}", "score": 0.0,
                      "max_score": 0.0, "visibility": "visible", "status": "failed", "tags": ["status"],
                      "output": sentence})
    return tests


def gradescope_results(result, hidden_cells=frozenset(), hidden_visibility="after_published"):
    """Gradescope's results.json for one graded result: every check a test with its points.

    Visible at once, before publishing: each notebook's status and the package's import errors
    (tests worth nothing), and every check without hidden material. Tests that hold hidden
    material (every function-level case, notebook cells with hidden tests) get hidden_visibility;
    their output is the grader's message, never a test's source. Cells staff graded in formgrader
    carry their points and the grader's comment. Written answers not graded by hand yet are listed
    as pending, and unanswered ones as such (max_score 0 both: the staff grade them in a
    Gradescope question of their own), so that every student's maxima add up to the same
    autograded points (autograder.results.scale); so does a notebook not graded there for want of its
    package (PyTorch without --torch)."""
    tests = _status_tests(result)
    for nb in result.notebooks:
        not_there = nb.get("not_attempted", "").startswith("not attempted")
        for g in nb["grades"]:
            name = f"{nb['notebook']}: {g['name']}"
            if g["needs_manual_grade"] or g.get("message") == NOT_ANSWERED:  # Gradescope's manual question
                tests.append({"name": f"{name} (written answer)", "max_score": 0.0, "visibility": "visible",
                              "output": f"Not answered: 0 of its {g['max_score']:g} points." if not g["needs_manual_grade"]
                              else f"Pending: graded by hand by the course staff ({g['max_score']:g} points)."})
                continue
            if g.get("hand_score") is not None:
                tests.append({"name": name, "score": g["hand_score"], "max_score": g["max_score"], "visibility": "visible",
                              "output": "\n".join(filter(None, [hand_graded(g), g.get("comment")])), "tags": ["by hand"]})
                continue
            score, most = g["auto_score"] or 0.0, 0.0 if not_there else g["max_score"]
            hidden = (nb["notebook"], g["name"]) in hidden_cells
            tests.append({"name": name, "score": score, "max_score": most,
                          "status": "passed" if score >= g["max_score"] else "failed",
                          "output": g.get("message") or "", "tags": ["notebook"],
                          "visibility": hidden_visibility if hidden else "visible"})
    for f in result.functions:  # no points of their own (autograder.results.scale)
        tests.append({"name": f"{f['task']}: {f['case']}", "score": 0.0, "max_score": 0.0,
                      "status": "passed" if f["passed"] else "failed", "output": f.get("message") or "",
                      "tags": ["function", f["task"]], "visibility": hidden_visibility})
    score, max_score, parts = scores(result)
    lines = [f"Score: {score:g} of {max_score:g}" + (f", {parts['extra_credit']:g} of it extra credit." if parts["extra_credit"] else "."),
             FUNCTIONS_SENTENCE, *causes(result)]
    return {"score": round(score, 3), "output": "\n".join(lines), "stdout_visibility": "hidden", "tests": tests}


def export(course, out_dir):
    """Write out_dir/grades.csv, out_dir/report.html (autograder.results.report), out_dir/results/<student>.json
    and out_dir/gradescope/<student>/results.json (as a Gradescope run writes it), hand grades
    included; returns the CSV's path."""
    from autograder.results import report
    from autograder.results.scale import course_scale

    out_dir = Path(out_dir)
    results, failures = graded_results(course), not_graded(course)
    write_atomically(out_dir / "grades.csv", grades_csv(results, failures))
    write_atomically(out_dir / "report.html", report.render(results, {sid: f.reason for sid, f in failures.items()},
                                                             course_scale(course.source), course.assignment_id))
    hidden_cells = cells_with_hidden_tests(course.source)
    for sid, result in results.items():
        stored = {k: v for k, v in json.loads(result.to_json()).items() if k != "nbgrader_log"}
        write_atomically(out_dir / "results" / f"{sid}.json", json.dumps(stored, indent=1))
        write_atomically(out_dir / "gradescope" / sid / "results.json", json.dumps(gradescope_results(result, hidden_cells), indent=1))
    return out_dir / "grades.csv"
