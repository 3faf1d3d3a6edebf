"""The messages of grading and what the summary makes of them: a GradeResult survives storage
(old rows and fields of newer versions included), grader-side failures say why, and the summary
lists every student not graded, every refused submission, every notebook that ran out of time
and the isolation limits."""
import errno
import json
from pathlib import Path

from autograder.intake.collect import Collected
from autograder.grading.failures import nbgrader_failure, reason_for
from autograder.results.records import FunctionCase, NotebookGrades
from autograder.results.store import GradeResult, NotGraded, problems, scores
from autograder.results.summary import summarize

GRADES = [NotebookGrades.from_json(nb) for nb in [{"notebook": "Toy", "grades": [
    {"name": "test_double", "auto_score": 2.0, "max_score": 2.0, "needs_manual_grade": False, "message": ""},
    {"name": "extra_bonus", "auto_score": 1.0, "max_score": 1.0, "needs_manual_grade": False, "message": ""},
    {"name": "why_relu", "auto_score": None, "max_score": 1.0, "needs_manual_grade": True, "message": ""}]}]]
FUNCTIONS = [FunctionCase.from_json(f) for f in [{"task": "relu_forward", "case": "basic", "points": 1.0, "max_points": 1.0, "passed": True, "message": ""},
             {"task": "relu_backward", "case": "basic", "points": 0.0, "max_points": 2.0, "passed": False,
              "message": "wrong"}]]


def _result(**kw):
    return GradeResult("amy", "d1", notebooks=GRADES, functions=FUNCTIONS, **kw)


def test_a_result_survives_storage_and_keeps_fields_it_does_not_know():
    result = _result(timed_out=["Toy"], isolation="rlimits", autograded_dir="/x", scratch="/y")
    stored = json.loads(result.to_json())
    assert "scratch" not in stored and "autograded_dir" not in stored
    newer = json.dumps({**stored, "recheck": {"test_double": True}})  # a field of a newer version
    back = GradeResult.from_json(newer)
    assert back.timed_out == ["Toy"] and back.isolation == "rlimits" and back.scratch == ""
    assert back.extra == {"recheck": {"test_double": True}}
    assert json.loads(back.to_json()) == json.loads(newer)
    older = {k: v for k, v in stored.items() if k not in ("timed_out", "isolation")}  # a row of an older version
    assert GradeResult.from_json(json.dumps(older)).timed_out == []


def test_scores_count_extra_credit_in_the_score_only_and_functions_not_at_all():
    score, max_score, parts = scores(_result())
    assert (score, max_score) == (3.0, 3.0)  # 2 + 1 extra; 2 + 1 manual: one scale, the notebooks'
    assert parts.manual_pending == 1 and parts.extra_credit == 1.0 and parts.extra_max == 1.0
    assert (parts.function_cases_passed, parts.function_cases) == (1, 2)


def test_a_hand_score_counts_in_place_of_the_automatic_one():
    from autograder.results.hand_grades import HandGrade, apply

    graded = apply(_result(), {("Toy", "why_relu"): HandGrade(0.5, "half"), ("Toy", "test_double"): HandGrade(1.0)})
    score, max_score, parts = scores(graded)
    assert (score, max_score, parts.manual_pending) == (2.5, 3.0, 0)  # 1 (override) + 1 extra + 0.5
    assert scores(_result())[0] == 3.0  # the stored result is untouched


def test_grader_side_failures_say_why():
    full = OSError(errno.ENOSPC, "No space left on device", "/course/.grading/scratch/x")
    assert reason_for(full).startswith("disk full writing /course/.grading/scratch/x")
    import sqlalchemy.exc

    locked = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
    assert reason_for(locked).startswith("database error: OperationalError")
    assert reason_for(ValueError("bug")) == "grader error: ValueError: bug"
    from concurrent.futures.process import BrokenProcessPool

    from autograder.errors import JudgeError, ZygoteFailed

    assert reason_for(JudgeError("the reference failed")) == "the judge failed: the reference failed"
    assert reason_for(ZygoteFailed("no answer")) == "nbgrader crashed: no answer"
    assert reason_for(BrokenProcessPool("gone")).startswith("the grading worker died")

    class JudgeErrorLookalike(RuntimeError):  # a name is not a kind
        pass

    JudgeErrorLookalike.__name__ = "JudgeError"
    assert reason_for(JudgeErrorLookalike("x")) == "grader error: JudgeError: x"
    assert nbgrader_failure(1, False, Path("/")) is None  # a kernel that died: the student's score
    assert nbgrader_failure(0, False, Path("/")) is None
    assert "time limit" in nbgrader_failure(1, True, Path("/"))


def test_the_summary_lists_not_graded_refused_timed_out_and_isolation():
    results = {"amy": _result(timed_out=["ConvolutionalNetworks"], isolation="cgroup v1"),
               "bob": GradeResult("bob", "d2", nbgrader_ok=False, isolation="cgroup v1")}
    failures = {"cid": NotGraded("cid", "d3", "disk full writing /x: free space").reason}
    refused = [Collected("dan", Path("dan.zip"), error="the zip is password-protected")]
    lines = summarize(results, failures, 12.0, refused)
    text = "\n".join(lines)
    assert lines[0].startswith("graded 2 submissions in 12 s")
    assert "NOT GRADED cid: disk full writing /x: free space (the next run grades them again)" in text
    assert "REFUSED dan (dan.zip): the zip is password-protected" in text
    assert "amy: ran out of time: ConvolutionalNetworks" in text
    assert "bob: some notebooks could not be run" in text
    assert "each student's code ran sandboxed (bubblewrap: no network, only the files it needs) as a user of its " \
           "own, with its CPU time, memory and number of processes capped for each process and for the run" in text
    assert "isolation limits" not in text and "cgroup v1" not in text  # the instructor's words, not ours
    assert "scores are out of 3 points; extra credit adds to them" in text
    table = {line.split()[0]: line.split()[1:] for line in lines[lines.index("") + 2:]}
    assert table["amy"][:2] == ["3.0", "3"] and table["cid"] == ["not", "graded"]  # of the notebooks' 3


def test_feedback_grades_csv_and_gradescope_tell_the_same_problems():
    import html

    from autograder.results.export import gradescope_results
    from autograder.results.feedback import render

    result = _result(nbgrader_ok=False, out_of_space=["Toy"], missing_files=["cs231n/layers.py"])
    said = problems(result)
    assert len(said) == 2 and "Toy filled the disk space" in said[1]
    page = html.unescape(render(result, "a2"))
    output = gradescope_results(result).output
    for sentence in said:
        assert sentence in page and sentence in output
    assert "Not submitted, so graded as the starter code: cs231n/layers.py." in output
    assert problems(_result()) == []


def test_the_course_folder_is_made_private_and_an_open_one_is_named(tmp_path, capsys):
    """It holds every student's submission and the grades: made 0700; one that other users may
    enter is used, with a warning saying how to close it."""
    from autograder.__main__ import main

    made = tmp_path / "new" / "course"
    assert main(["--course", str(made), "export"]) == 0
    assert made.stat().st_mode & 0o777 == 0o700
    assert "warning" not in capsys.readouterr().err
    made.chmod(0o755)
    assert main(["--course", str(made), "export"]) == 0
    assert capsys.readouterr().err.count(f"make it private: chmod 700 {made}") == 1


def test_names_a_student_chose_cannot_drive_the_instructors_terminal(capsys):
    """A submission's folder or file name is the student's: a terminal escape in it (here: clear
    the line, then a fake grade) is printed escaped in the summary and in collect's report."""
    from autograder.__main__ import _report_collected

    name = "amy+a2+x\x1b[2K\rgraded amy 100/100\n"
    entry = Collected("amy", Path("/exchange/inbound") / name, error=f"it holds {name}/pipe, a special file")
    text = "\n".join(summarize({}, {}, 1.0, [entry]))
    _report_collected([entry])
    printed = capsys.readouterr().err
    for shown in (text, printed):
        assert "\x1b" not in shown and "\r" not in shown and "\\x1b[2K\\rgraded amy 100/100\\n" in shown, shown


def test_rows_stored_by_the_version_before_records_read_back_whole_with_the_same_scores():
    """tests/data/stored_results_s7.json: the results table of a toy class graded by ede680d
    (tests/data/make_stored_results_s7.py), whose scores it printed as below."""
    rows = json.loads((Path(__file__).parent / "data" / "stored_results_s7.json").read_text())
    back = {sid: GradeResult.from_json(json.dumps(row)) for sid, row in rows.items()}
    assert {sid: scores(result)[:2] for sid, result in back.items()} == {
        "garbled": (3.0, 22.0), "good": (3.0, 22.0), "looper": (0.0, 22.0), "raiser": (3.0, 22.0), "typo": (0.0, 22.0)}
    for sid, result in back.items():
        assert json.loads(result.to_json()) == rows[sid], sid  # nothing lost, nothing added
    looper = back["looper"].notebooks[1]
    assert looper.stops.timed_out.cell == 4 and looper.stops.did_not_run == ("test_double", "test_relu", "by_hand")
    assert back["garbled"].notebooks[0].not_attempted.startswith("could not be read")
    assert back["typo"].notebooks[1].stops.error.exception == "SyntaxError"


def test_the_stored_rows_make_the_same_pages_csv_and_gradescope_json_as_before():
    """tests/data/outputs_s7.json: what ede680d made of the same rows (tests/data/make_outputs_s7.py),
    a hand grade and a comment laid over one of them."""
    from autograder.results.causes import causes
    from autograder.results.export import gradescope_results, row
    from autograder.results.feedback import render
    from autograder.results.hand_grades import HandGrade, apply

    data = Path(__file__).parent / "data"
    rows, before = (json.loads((data / name).read_text()) for name in ("stored_results_s7.json", "outputs_s7.json"))
    for sid, stored in rows.items():
        result = GradeResult.from_json(json.dumps(stored))
        if sid == "good":
            result = apply(result, {("Toy", "by_hand"): HandGrade(4.0, "nice curve"), ("Toy", "test_relu"): HandGrade(None, "ok")})
        assert gradescope_results(result, {("Toy", "test_double")}).to_json() == before[sid]["gradescope"], sid
        assert row(result) == before[sid]["row"] and causes(result) == before[sid]["causes"], sid
        assert render(result, "a2") == before[sid]["feedback"], sid
