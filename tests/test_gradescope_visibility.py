"""Gradescope, right away (issue 21, deliverable 5): before publishing, a student sees how each
notebook ran, which file of their package does not import, and the public checks' results;
only tests holding hidden material wait (`after_published`). A notebook not graded there for
want of its package (PyTorch without --torch) carries no points there. The zip says whether
setup.sh installs PyTorch, and carries the grader's TimeBudget."""
import json
import zipfile

from autograder.results.export import gradescope_results
from autograder.results.store import GradeResult

IMPORT_ERROR = "importing cs231n.layers raised SyntaxError: invalid syntax (layers.py, line 643)"


def _result():
    toy = {"notebook": "Toy", "stops": {"cell_timeout": 60, "budget": 600,
                                         "error": {"cell": 4, "after": "double", "exception": "ValueError"}},
           "grades": [{"name": "test_double", "auto_score": 0.0, "max_score": 2.0, "needs_manual_grade": False,
                       "message": "failed when your notebook ran"},
                      {"name": "test_relu", "auto_score": 3.0, "max_score": 3.0, "needs_manual_grade": False,
                       "message": "passed"}]}
    fine = {"notebook": "Dropout", "grades": [{"name": "test_dropout", "auto_score": 1.0, "max_score": 1.0,
                                               "needs_manual_grade": False, "message": "passed"}]}
    torch = {"notebook": "PyTorch", "not_attempted": "not attempted: torch is not installed where this was graded, "
                                                     "so PyTorch.ipynb was not run",
             "grades": [{"name": "extra_torch_conv", "auto_score": 0.0, "max_score": 4.0, "needs_manual_grade": False,
                         "message": "not attempted"}]}
    functions = [{"task": "conv_forward_naive", "case": f"case{i}", "points": 0.0, "max_points": 1.0, "passed": False,
                  "message": IMPORT_ERROR} for i in range(3)]
    return GradeResult.from_json(json.dumps({"student_id": "ada", "digest": "0" * 64, "notebooks": [toy, fine, torch],
                                             "functions": functions, "timed_out": []}))


def test_statuses_and_import_errors_are_visible_at_once_and_only_hidden_material_waits():
    tests = {t.name: t for t in gradescope_results(_result(), hidden_cells={("Toy", "test_double")}).tests}
    status = tests["Toy: how it ran"]
    assert status.visibility == "visible" and status.max_score == 0
    assert status.output.startswith("Toy: the first error was in cell 4 (at or after double): ValueError")
    assert tests["Dropout: how it ran"].output == "Dropout ran to its end."
    package = tests["your package: cs231n/layers.py"]
    assert package.visibility == "visible" and "SyntaxError at line 643" in package.output
    assert tests["Toy: test_relu"].visibility == "visible"  # a public check: its result at once
    assert tests["Toy: test_double"].visibility == "after_published"  # holds hidden tests
    assert all(t.visibility == "after_published" for t in tests.values() if "function" in t.tags)
    waiting = [name for name, t in tests.items() if t.visibility != "visible"]
    assert sorted(waiting) == sorted(["Toy: test_double", *(f"conv_forward_naive: case{i}" for i in range(3))])


def test_a_notebook_not_graded_there_carries_no_points_there():
    results = gradescope_results(_result())
    tests = {t.name: t for t in results.tests}
    assert tests["PyTorch: extra_torch_conv"].max_score == 0
    assert tests["PyTorch: how it ran"].output.startswith("PyTorch: not attempted: torch is not installed")
    assert "PyTorch: not attempted" in results.output  # the top-level output says it too


def test_the_zip_asks_setup_sh_for_pytorch_only_with_the_flag(tmp_path):
    from course_fixtures import make_toy_source

    from autograder.config import Course
    from autograder.gradescope import SETTINGS, build_autograder_zip, torch_requirement

    course = Course(root=tmp_path / "course", db_url=f"sqlite:///{tmp_path / 'gb.db'}",
                    source_root=make_toy_source(tmp_path / "src"))
    for flag, want in ((False, ""), (True, torch_requirement())):
        with zipfile.ZipFile(build_autograder_zip(course, tmp_path / str(flag), torch=flag)) as zf:
            assert json.loads(zf.read(SETTINGS))["torch"] == want
            assert 'install ${TORCH_PIP_ARGS:-} "$torch_pin"' in zf.read("setup.sh").decode()
    assert torch_requirement().startswith("torch==")


def test_an_exception_class_the_kernel_made_up_is_not_named(tmp_path):
    """Only the first error's name reaches the student; a class the student's kernel made, after
    hidden tests ran in it, could spell them in its name: it is never repeated."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from autograder.budget import TimeBudget
    from autograder.results.causes import read_stops
    from autograder.results.records import Stop

    def notebook(ename):
        cell = new_code_cell("x", outputs=[new_output("error", ename=ename, evalue="anything", traceback=[])])
        path = tmp_path / f"{ename[:20]}.ipynb"
        nbformat.write(new_notebook(cells=[new_code_cell("1"), cell]), path)
        return read_stops(path, TimeBudget(cell=60, notebook=600)).error

    assert notebook("ValueError") == Stop(cell=2, after="", exception="ValueError")
    assert notebook("LinAlgError").exception == "LinAlgError"
    leak = "check_close_hidden_double_of_a_matrix_double_np_eye_2"
    assert notebook(leak).exception == "an exception of a class of its own"


def test_the_zip_carries_the_budget_of_the_command_line_and_reads_todays_settings(tmp_path):
    from course_fixtures import make_toy_source

    from autograder.__main__ import main
    from autograder.budget import GRADESCOPE, TimeBudget
    from autograder.gradescope import SETTINGS, Settings

    src = make_toy_source(tmp_path / "src")
    for flags, want in (([], GRADESCOPE), (["--judge-timeout", "5"], GRADESCOPE.with_limits(judge_case=5))):
        out = tmp_path / f"out{len(flags)}"
        assert main(["--course", str(tmp_path / "course"), "--source", str(src), "gradescope", "--out", str(out),
                     *flags]) == 0
        with zipfile.ZipFile(out / "autograder.zip") as zf:
            assert Settings.from_json(json.loads(zf.read(SETTINGS))).budget == want
    # a zip built before the budget travelled whole: its two limits, every other one the default
    today = {"assignment_id": "a2", "dataset": "digits", "cell_timeout": 60, "judge_timeout": 5,
             "hidden_visibility": "after_published", "torch": ""}
    assert Settings.from_json(today).budget == TimeBudget(cell=60, judge_case=5)
