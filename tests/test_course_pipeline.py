"""The course pipeline end to end on a small assignment in the course's format: the release
leaks nothing, collection is safe, grading uses the student's own code and is right and
deterministic, feedback never shows a test's source, and the exports have the right shape.

The demo class (autograder.demo) is graded once per module: reference, starter, partial,
syntax-error, infinite-loop, deleted-cell."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from course_fixtures import HIDDEN_LINE, SOLUTION_LINE, make_toy_source

from autograder.budget import TimeBudget
from autograder.intake.collect import SubmissionRefused, collect, collect_one, student_id_of
from autograder.config import PACKAGE, ROOT, Course
from autograder.sandbox.bubblewrap import isolation_available
from autograder.release.build import build_release, find_leaks

# one worker runs this file, so its module-scoped fixture is built once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo_class")]


def _course(tmp):
    src = make_toy_source(tmp / "src")
    return Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}", source_root=src)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo class, graded: (course, results, failures)."""
    from autograder.demo import DEMO_STUDENTS, make_demo_class
    from autograder.grading.grade import grade_all

    tmp = tmp_path_factory.mktemp("demo")
    course = _course(tmp)
    release = build_release(course)
    make_demo_class(course.source, release, tmp / "submissions")
    collected = collect(tmp / "submissions", course)
    assert not [c.error for c in collected if c.error]
    results, failures = grade_all(course, students=list(DEMO_STUDENTS), workers=2, force=True,
                                  progress=False, budget=TimeBudget(judge_case=3, cell=60))
    return course, results, failures


# --------------------------------------------------------------------------------------------
# Release
# --------------------------------------------------------------------------------------------
def test_release_leaks_nothing_and_has_what_a_student_needs(tmp_path):
    course = _course(tmp_path)
    out = build_release(course, out=tmp_path / "handout")
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for needed in ("Toy.ipynb", "cs231n/layers.py", "cs231n/fast_layers.pyx", "setup.py", "requirements.txt",
                   "Makefile", "README.md", "datasets/get_datasets.py", "tests/test_layers.py", "tests/conftest.py"):
        assert needed in names
    assert not any(n.endswith((".so", ".db")) or "autograder" in n or "nbgrader_config" in n for n in names)
    text = "\n".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", HIDDEN_LINE, SOLUTION_LINE,
                   "out = x.reshape(x.shape[0], -1) @ w + b"):  # a solution line of the package
        assert secret not in text, f"the release shows {secret!r}"
    assert find_leaks(out, source_dir=course.source) == []


def test_leak_check_catches_a_solution_and_a_marker(tmp_path):
    course = _course(tmp_path)
    out = build_release(course, out=tmp_path / "handout")
    layers = out / "cs231n" / "layers.py"
    layers.write_text(layers.read_text() + "\n# ### BEGIN SOLUTION\n    out = x.reshape(x.shape[0], -1) @ w + b\n")
    leaks = find_leaks(out, source_dir=course.source)
    assert any("marker" in leak for leak in leaks) and any("solution or hidden-test line" in leak for leak in leaks)


# --------------------------------------------------------------------------------------------
# Collect
# --------------------------------------------------------------------------------------------
def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


NB = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.parametrize("name, expected", [("alice", "alice"), ("alice.zip", "alice"),
                                            ("bob_a2_attempt_2026-11-20.zip", "bob"), ("_x.zip", None)])
def test_student_ids_come_from_names(name, expected):
    assert student_id_of(name) == expected


def test_collect_takes_only_graded_files_and_looks_through_one_folder(tmp_path):
    sub = _zip(tmp_path / "carol.zip", {"a2/Toy.ipynb": NB, "a2/cs231n/layers.py": "x = 1\n",
                                        "a2/notes.txt": "hi", "a2/cs231n/__pycache__/x.pyc": "b"})
    result = collect_one(sub, tmp_path / "dest")
    assert sorted(result.files) == ["Toy.ipynb", "cs231n/layers.py"]
    assert sorted(result.skipped) == ["cs231n/__pycache__/x.pyc", "notes.txt"]
    assert (tmp_path / "dest" / "timestamp.txt").exists()


@pytest.mark.parametrize("members, fragment", [
    ({"../evil.ipynb": NB}, "unsafe path"),
    ({"/etc/evil.ipynb": NB}, "unsafe path"),
    ({"cs231n/layers.py": "x = 1\n"}, "no notebook"),
])
def test_collect_refuses_unsafe_zips_and_writes_nothing(tmp_path, members, fragment):
    with pytest.raises(SubmissionRefused, match=fragment):
        collect_one(_zip(tmp_path / "dave.zip", members), tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and list(tmp_path.glob(".dest-*")) == []


def test_collect_refuses_links_and_zip_bombs(tmp_path):
    folder = tmp_path / "erin"
    (folder / "cs231n").mkdir(parents=True)
    (folder / "Toy.ipynb").write_text(NB)
    (folder / "cs231n" / "layers.py").symlink_to("/etc/passwd")
    with pytest.raises(SubmissionRefused, match="link"):
        collect_one(folder, tmp_path / "dest")
    bomb = tmp_path / "frank.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Toy.ipynb", NB)
        zf.writestr("cs231n/layers.py", b"0" * (25 * 2**20))  # 25 MB of zeros, a few KB zipped
    assert bomb.stat().st_size < 2**20
    with pytest.raises(SubmissionRefused, match="larger than"):
        collect_one(bomb, tmp_path / "dest")


def test_collect_reports_duplicates_and_keeps_going(tmp_path):
    course = _course(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    _zip(subs / "gina_1.zip", {"Toy.ipynb": NB})
    _zip(subs / "gina_2.zip", {"Toy.ipynb": NB})
    _zip(subs / "hal.zip", {"Toy.ipynb": NB})
    result = {c.student_id: c.error for c in collect(subs, course)}
    assert result["hal"] == "" and "several submissions" in result["gina"]


# --------------------------------------------------------------------------------------------
# Grading the demo class
# --------------------------------------------------------------------------------------------
def _by_task(result):
    tasks = {}
    for f in result.functions:
        earned, possible = tasks.get(f.task, (0.0, 0.0))
        tasks[f.task] = (earned + f.points, possible + f.max_points)
    return tasks


def test_the_batch_finishes_and_nothing_fails_to_run(demo):
    _, results, failures = demo
    assert failures == {}
    assert set(results) == {"reference", "starter", "partial", "syntax-error", "infinite-loop", "deleted-cell"}


def test_reference_gets_full_marks_and_starter_none(demo):
    from autograder.results.store import scores

    _, results, _ = demo
    ref, starter = results["reference"], results["starter"]
    assert all(f.passed for f in ref.functions) and len(ref.functions) > 30
    auto = [g for nb in ref.notebooks for g in nb.grades if not g.needs_manual_grade]
    assert all(g.score_before_check == g.max_score for g in auto)
    # test_double checks only notebook state: no task confirms it, so it keeps no points
    assert all(g.auto_score == (0 if g.name == "test_double" else g.max_score) for g in auto)
    assert not any(f.passed for f in starter.functions)
    assert scores(starter)[0] == 0


def test_graded_notebooks_run_with_the_compiled_fast_layers(demo):
    """The kernel imports the instructor's build of the fast layers, not the naive fallback
    (the course's ignore list keeps *.so out of the release, and must not keep it out of
    autograded/: ConvNets trained on naive layers take minutes per notebook)."""
    course, _, _ = demo
    nb = nbformat.read(course.step_dir("autograded", "reference") / "Toy.ipynb", as_version=4)
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "fast layers: True" in printed


@pytest.mark.skipif(not isolation_available(), reason="the kernel zygote serves isolated runs (root)")
def test_graded_kernels_come_from_the_runs_kernel_zygote(demo):
    """A graded kernel starts with what the assignment imports already imported
    (autograder/notebooks/kernel_zygote.py), instead of importing it again in every notebook:
    the toy's numpy, and none of what only the real assignment uses (sklearn's digits)."""
    course, _, _ = demo
    nb = nbformat.read(course.step_dir("autograded", "reference") / "Toy.ipynb", as_version=4)
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "preloaded: True not used: False" in printed


def test_one_wrong_function_loses_exactly_its_points(demo):
    _, results, _ = demo
    ref, partial = _by_task(results["reference"]), _by_task(results["partial"])
    lost = {task for task in ref if partial[task] != ref[task]}
    # the judge runs the naive layers (no compiled code from a submission), so the residual
    # block's backward pass and the small ResNet's gradients, which run the student's
    # conv_backward_naive, fail with it
    assert lost == {"conv_backward_naive", "residual_block_backward", "ResNet", "sgd_momentum", "nesterov",
                    "adagrad", "rmsprop", "adam", "adadelta"}
    assert all(partial[task][0] == 0 for task in lost)


def test_syntax_error_and_infinite_loop_cost_only_their_own_points(demo):
    _, results, _ = demo
    ref = _by_task(results["reference"])
    loop = _by_task(results["infinite-loop"])
    assert {t for t in ref if loop[t] != ref[t]} == {"spatial_groupnorm_forward", "spatial_groupnorm_backward"}
    assert any("timed out" in f.message for f in results["infinite-loop"].functions)
    broken = _by_task(results["syntax-error"])
    from cs231n.tasks import TASKS_BY_FILE

    layer_tasks = set(TASKS_BY_FILE["layers.py"])
    assert all(broken[t][0] == 0 for t in layer_tasks)
    assert all(broken[t] == ref[t] for t in TASKS_BY_FILE["optim.py"] + TASKS_BY_FILE["arch.py"])


def test_a_deleted_test_cell_is_restored_and_graded(demo):
    _, results, _ = demo
    grades = {g.name: g for nb in results["deleted-cell"].notebooks for g in nb.grades}
    assert grades["test_double"].score_before_check == grades["test_double"].max_score


def test_grading_again_changes_nothing_and_skips_merged_students(demo):
    from autograder.grading.grade import grade_all

    course, results, _ = demo
    again, failures = grade_all(course, students=["reference", "partial"], workers=2, force=True,
                                progress=False, budget=TimeBudget(judge_case=3, cell=60))
    for sid in ("reference", "partial"):
        assert again[sid].functions == results[sid].functions
        assert again[sid].notebooks == results[sid].notebooks
    skipped, _ = grade_all(course, students=["reference"], workers=1, progress=False)
    assert skipped == {}  # unchanged submission already merged: nothing to do


def test_feedback_shows_results_but_no_test_source(demo):
    from autograder.results.feedback import write_feedback

    course, _, _ = demo
    pages = write_feedback(course)
    assert set(pages) >= {"reference", "starter"}
    starter = pages["starter"].read_text()
    assert "NotImplementedError" in starter and "test_double" in starter
    for page in pages.values():
        text = page.read_text()
        assert HIDDEN_LINE not in text and "BEGIN HIDDEN" not in text and SOLUTION_LINE not in text
        assert "check_close(" not in text  # no source line of any test cell


def test_exports(demo, tmp_path):
    from autograder.results.export import export

    course, results, _ = demo
    path = export(course, tmp_path / "out")
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(path.read_text()))}
    assert set(rows) == set(results)
    assert float(rows["starter"]["score"]) == 0 and float(rows["reference"]["score"]) > 0
    assert rows["reference"]["max_score"] == rows["starter"]["max_score"]
    gs = json.loads((tmp_path / "out" / "gradescope" / "reference" / "results.json").read_text())
    # every check a test with its points; the written answer pending (no score), not zero
    assert all({"name", "max_score", "output", "visibility"} <= set(t) for t in gs["tests"])
    assert [t["name"] for t in gs["tests"] if "score" not in t] == ["Toy: why_relu (written answer)"]
    assert abs(gs["score"] - sum(t["score"] for t in gs["tests"] if "score" in t)) < 1e-6
    per_student = json.loads((tmp_path / "out" / "results" / "partial.json").read_text())
    assert any(not f["passed"] and f["task"] == "conv_backward_naive" for f in per_student["functions"])


def test_cli_grades_a_folder_of_submissions(tmp_path):
    course = _course(tmp_path)
    build_release(course)
    subs = tmp_path / "subs"
    (subs / "ivy").mkdir(parents=True)
    shutil.copy(course.source / "Toy.ipynb", subs / "ivy")
    shutil.copytree(PACKAGE, subs / "ivy" / "cs231n", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c"))
    env = {**os.environ, "CS231N_COURSE_DIR": str(course.root)}
    env.pop("CS231N_DB_URL", None)
    proc = subprocess.run([sys.executable, "-m", "autograder", "--source", str(course.source_root), "grade",
                           str(subs), "--out", str(tmp_path / "out"), "--workers", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "graded 1 submissions" in proc.stdout
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [r["student_id"] for r in rows] == ["ivy"] and float(rows[0]["score"]) > 0


def test_a_test_cell_deleted_after_a_read_only_cell_is_restored(tmp_path):
    """nbgrader 0.9.6 itself fails here (KeyError) and scores the whole notebook 0;
    autograder.notebooks.nbgrader_fixes.OverwriteFromSource puts the cell back."""
    import nbformat

    from autograder.grading.grade import grade_all

    src = make_toy_source(tmp_path / "src", readonly_helper=True)
    course = Course(root=tmp_path / "course", db_url=f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}",
                    source_root=src)
    build_release(course)
    folder = tmp_path / "subs" / "jo"
    folder.mkdir(parents=True)
    nb = nbformat.read(course.source / "Toy.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ("helpers", "test_relu")]
    nbformat.write(nb, folder / "Toy.ipynb")
    shutil.copytree(PACKAGE, folder / "cs231n", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c"))
    assert not [c.error for c in collect(tmp_path / "subs", course) if c.error]
    results, failures = grade_all(course, workers=1, progress=False, budget=TimeBudget(judge_case=3, cell=60))
    assert failures == {} and results["jo"].nbgrader_ok, results["jo"].nbgrader_log
    grades = {g.name: g for nb in results["jo"].notebooks for g in nb.grades}
    assert grades["test_relu"].auto_score == 3 and grades["test_double"].score_before_check == 2
