"""The Gradescope autograder end to end: `python -m autograder gradescope` builds autograder.zip;
it is unpacked into a temporary root laid out as Gradescope's (/autograder: source/, submission/,
results/, run_autograder), its setup.sh installs everything into a fresh virtual environment
(Debian standing in for Gradescope's Ubuntu) and builds the fast layers, and run_autograder
grades four uploads: the reference as the zip `make submit` writes, the untouched starter as
unpacked files, the reference with one wrong function, and uploads that are not a zip.

Each results.json is checked against a JSON schema of Gradescope's format (below), its score
against `python -m autograder grade` on the same files, and for hidden-test source.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from course_fixtures import HIDDEN_LINE, SOLUTION_LINE, make_toy_source
from quick_cc import quick_cc_env

from autograder.config import PACKAGE, ROOT, Course
from autograder.demo import WRONG_CONV_BACKWARD
from autograder.release.build import build_release

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gradescope")]

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
# Gradescope's results.json (gradescope-autograders.readthedocs.io, "Autograder Specifications"),
# strict: a misspelt key is an error here, as Gradescope would silently ignore it.
TEST_SCHEMA = {
    "type": "object",
    "required": ["name", "max_score", "output", "visibility"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0}, "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": ["passed", "failed"]}, "name": {"type": "string", "minLength": 1},
        "name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]}, "number": {"type": "string"},
        "output": {"type": "string"}, "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "tags": {"type": "array", "items": {"type": "string"}}, "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["score", "output", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0}, "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"}, "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": VISIBILITY, "stdout_visibility": VISIBILITY, "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST_SCHEMA},
        "leaderboard": {"type": "array"},
    },
}
STUDENTS = ("reference", "starter", "onebug")
PIP_CACHE = ROOT / ".cache" / "pip"


def _submission_files(kind, source, release):
    """{relative path: source file} of one kind of submission, laid out as `make submit` packs it."""
    notebooks, package = (release, release / "cs231n") if kind == "starter" else (source, PACKAGE)
    files = {nb.name: nb for nb in sorted(notebooks.glob("*.ipynb"))}
    files.update({f"cs231n/{p.relative_to(package).as_posix()}": p for p in sorted(package.rglob("*.py"))
                  if "__pycache__" not in p.parts})
    return files


def _write_folder(files, folder):
    for name, src in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / name)
    return folder


def _one_bug(folder):
    layers = folder / "cs231n" / "layers.py"
    layers.write_text(layers.read_text() + WRONG_CONV_BACKWARD)


def _zip_folder(folder, out):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return out


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory):
    """(Gradescope root with the autograder set up, the source folder, the release folder, the
    setup.sh outputs of two runs)."""
    tmp = tmp_path_factory.mktemp("gradescope")
    src = make_toy_source(tmp / "src")
    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}", source_root=src)
    release = build_release(course)
    proc = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "--source", str(src),
                           "gradescope", "--out", str(tmp / "out"), "--cell-timeout", "60", "--judge-timeout", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp / "autograder"
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(tmp / "out" / "autograder.zip") as zf:
        zf.extractall(root / "source")
    # Gradescope copies run_autograder next to source/; unzip does not keep the mode bits
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    # pip's cache outlives the test (git-ignored), so only the first run on a machine downloads
    # PIP_COMPILE=0: pip does not byte-compile every installed file (Python compiles what is
    # imported); the fast layers build at -O0
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "PIP_CACHE_DIR": str(PIP_CACHE), "PIP_COMPILE": "0",
           **quick_cc_env(tmp / "cc")}
    env.pop("VIRTUAL_ENV", None)
    outputs = []
    for _ in range(2):  # the second run finds everything in place
        setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root, env=env,
                               capture_output=True, text=True, timeout=1800)
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        outputs.append(setup.stdout + setup.stderr)
    return root, src, release, outputs


def run_autograder(root, place_upload):
    """Empty submission/ and results/, let place_upload(submission_dir) put an upload there, run
    run_autograder; returns (results.json as text, the completed process)."""
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder)
        (root / folder).mkdir()
    place_upload(root / "submission")
    env = {**os.environ, "GRADESCOPE_ROOT": str(root)}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    path = root / "results" / "results.json"
    assert path.exists(), f"no results.json; run_autograder said:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return path.read_text(), proc


@pytest.fixture(scope="module")
def graded(gradescope, tmp_path_factory):
    """{student: results.json text} from Gradescope, and {student: score} from the CLI."""
    root, src, release, _ = gradescope
    tmp = tmp_path_factory.mktemp("gradescope-uploads")
    folders = {}
    for kind in STUDENTS:
        folders[kind] = _write_folder(_submission_files(kind, src / "a2", release), tmp / "subs" / kind)
    _one_bug(folders["onebug"])
    uploads = {
        "reference": lambda d: _zip_folder(folders["reference"], d / "a2_submission.zip"),
        "starter": lambda d: shutil.copytree(folders["starter"], d, dirs_exist_ok=True),
        "onebug": lambda d: _zip_folder(folders["onebug"], d / "a2_submission.zip"),
        "not-a-zip": lambda d: (d / "a2_submission.pdf").write_text("%PDF-1.4 my answers"),
        "broken-zip": lambda d: (d / "a2_submission.zip").write_bytes(b"PK\x03\x04 cut short"),
    }
    texts = {name: run_autograder(root, place)[0] for name, place in uploads.items()}
    env = {**os.environ, "CS231N_COURSE_DIR": str(tmp / "course")}
    env.pop("CS231N_DB_URL", None)
    proc = subprocess.run([sys.executable, "-m", "autograder", "--source", str(src), "grade", str(tmp / "subs"),
                           "--out", str(tmp / "out"), "--workers", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cli = {r["student_id"]: float(r["score"]) for r in csv.DictReader((tmp / "out" / "grades.csv").open())}
    return texts, cli


def test_the_zip_has_gradescope_layout_and_setup_builds_the_fast_layers(gradescope):
    root, _, _, outputs = gradescope
    for name in ("setup.sh", "run_autograder", "gradescope.json", "requirements.txt", "cs231n/layers.py",
                 "autograder/judge/__init__.py", "autograder/hidden/cases.py", "assignments/a2/Toy.ipynb"):
        assert (root / "source" / name).is_file(), name
    with zipfile.ZipFile(root.parent / "out" / "autograder.zip") as zf:  # built there, not shipped
        assert not [n for n in zf.namelist() if n.endswith((".so", ".c")) or "__pycache__" in n]
    code = "from cs231n.layer_utils import FAST_LAYERS; import cs231n.fast_layers as f; print(FAST_LAYERS, f.__file__)"
    probe = subprocess.run([str(root / "venv" / "bin" / "python"), "-c", code], cwd="/", capture_output=True, text=True)
    assert probe.stdout.startswith("True " + str(root / "source" / "cs231n")), probe.stderr
    assert all("setup.sh: ready" in out for out in outputs)
    assert all("sandbox check passed: a bubblewrap sandbox" in out for out in outputs)  # proved, not assumed


def test_setup_fails_the_build_saying_why_when_the_sandbox_does_not_work(gradescope, tmp_path):
    """Where user namespaces are blocked (Docker's default seccomp profile) bwrap cannot start:
    setup.sh must fail, not leave an autograder that marks every upload 'not graded'."""
    root = gradescope[0]
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "PIP_CACHE_DIR": str(PIP_CACHE),
           "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root, env=env, capture_output=True,
                           text=True, timeout=1800)
    assert setup.returncode != 0 and "setup.sh: ready" not in setup.stdout
    assert "sandbox check FAILED" in setup.stderr and "setting up uid map: Permission denied" in setup.stderr
    assert "What to change: bubblewrap needs unprivileged user namespaces" in setup.stderr


def test_results_follow_gradescopes_format(graded):
    import jsonschema

    texts, _ = graded
    for text in texts.values():
        jsonschema.validate(json.loads(text), RESULTS_SCHEMA)


def test_scores_equal_the_cli_grader(graded):
    texts, cli = graded
    got = {name: json.loads(texts[name])["score"] for name in STUDENTS}
    assert got == pytest.approx(cli, abs=1e-3)
    # the toy has no check of conv_backward_naive, so onebug's bug costs it no point (functions carry none)
    assert got["reference"] == got["onebug"] > got["starter"] == 0


def test_each_test_scores_its_own_points(graded):
    texts, _ = graded
    ref, bug = json.loads(texts["reference"]), json.loads(texts["onebug"])
    scored = [t for t in ref["tests"] if "score" in t]
    assert sum(t["score"] for t in scored) == pytest.approx(ref["score"])
    # test_double names no student task, so no cell keeps points for it (autograder.results.evidence)
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] for t in scored
               if t["name"] != "Toy: test_double")
    assert [t["score"] for t in scored if t["name"] == "Toy: test_double"] == [0]
    # the bug is in conv_backward_naive; the judge's residual block and ResNet run on the naive layers, so they
    # fail with it; the toy's test_double keeps no points for anyone (it names no task)
    failed = {t["name"] for t in bug["tests"] if t.get("status") == "failed"}
    assert {name.split(":")[0] for name in failed} - {"Toy"} == {"conv_backward_naive", "residual_block_backward", "ResNet"}
    assert {name for name in failed if name.startswith("Toy")} == {"Toy: test_double"}


def test_written_answers_are_pending_not_zero(graded):
    texts, _ = graded
    for name in ("reference", "onebug"):  # answered; the starter's untouched answer scores 0 in nbgrader
        written = [t for t in json.loads(texts[name])["tests"] if "why_relu" in t["name"]]
        assert len(written) == 1 and "score" not in written[0] and written[0]["max_score"] == 0
        assert "graded by hand" in written[0]["output"]


def test_hidden_tests_are_not_shown_before_publishing_and_never_their_source(graded):
    texts, _ = graded
    tests = {t["name"]: t for t in json.loads(texts["starter"])["tests"]}
    assert tests["Toy: test_double"]["visibility"] == "after_published"  # holds hidden tests
    assert tests["Toy: test_relu"]["visibility"] == "visible"
    assert all(t["visibility"] == "after_published" for t in tests.values() if "function" in t.get("tags", []))
    assert json.loads(texts["starter"])["stdout_visibility"] == "hidden"
    for text in texts.values():
        assert HIDDEN_LINE not in text and "HIDDEN TESTS" not in text and SOLUTION_LINE not in text
        assert "check_close(" not in text


@pytest.mark.parametrize("upload, words", [("not-a-zip", "no zip file and no notebook"),
                                           ("broken-zip", "not a valid zip")])
def test_an_upload_that_cannot_be_graded_says_why(graded, upload, words):
    texts, _ = graded
    result = json.loads(texts[upload])
    assert result["score"] == 0 and result["tests"] == []
    assert "not graded" in result["output"] and words in result["output"] and "make submit" in result["output"]
