"""Build the students' release from the instructor's tree, and prove it leaks nothing.

generate_notebooks (nbgrader), add_package_and_support (the stubbed package, support files,
public tests), then find_leaks: a leak stops the release. docs/release.md, "The release step".
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from autograder.release import stored_values
from autograder.config import PACKAGE, ROOT, Course, nbgrader_succeeded
from autograder.release.stubs import strip_package
from cs231n.tasks import BEGIN_SOLUTION, END_SOLUTION

SUPPORT_FILES = {  # release path: source path
    "setup.py": ROOT / "setup.py",
    "pyproject.toml": ROOT / "pyproject.toml",
    "requirements.txt": ROOT / "requirements.txt",
    "Makefile": ROOT / "autograder" / "release" / "student" / "Makefile",
    "README.md": ROOT / "autograder" / "release" / "student" / "README.md",
    "datasets/get_datasets.py": ROOT / "datasets" / "get_datasets.py",
    "datasets/resumable_download.py": ROOT / "datasets" / "resumable_download.py",
    "datasets/safe_extract.py": ROOT / "datasets" / "safe_extract.py",
}
# The project's tests that students may run: they check against independent implementations,
# numerical gradients and stored values, never against the reference solution, and never with an
# independent implementation of a task (those are in tests/test_reference_answers.py).
PUBLIC_TESTS = ["conftest.py", "helpers.py", "test_layers.py", "test_classifiers.py", "test_optim.py",
                "test_solver.py", "test_checks.py", "test_fast_layers.py", "test_gradient_check.py",
                "test_arch.py", "test_residual.py", "test_backward_stored.py"]
FORBIDDEN_NAMES = ("autograder", "gradebook", "nbgrader_config", ".git", "hidden", "solution")
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MIN_SECRET_LINE = 24  # shorter lines (e.g. "dx = dout") may legitimately appear in given code


# What a task asks the student to write, in the forms given code or a check would hand it out
# (issue 23): the window-count arithmetic, same padding, a square filter's weight count, and a
# convolution or pooling by a library. The release shows none of them outside the students'
# stubs; checks compare with stored values (cs231n/stored.py) and the reference code of a check
# sits in its hidden tests, which the release removes.
ANSWER_FORMS = {
    "output-size arithmetic": re.compile(
        r"//\s*\(?\s*\w+\s*\)?\s*\+\s*1\b"                # (n + 2*p - f) // stride + 1
        r"|\b1\s*\+\s*\(.*\)\s*//\s*\w*stride"                   # 1 + (n + 2*p - f) // stride
        r"|/\s*\{?\s*\w*stride\w*\s*\}?\s*\+\s*1\b"),              # ... / {stride} + 1 in a message
    "same padding": re.compile(r"\(\s*\w+\s*-\s*1\s*\)\s*//?\s*2\b"),     # (F - 1) // 2
    "a filter's weight count": re.compile(
        r"\b(field|size|F|HH|WW|filter_size|kernel_size|k)\s*\*\s*\1\s*\*\s*\w+"),  # F * F * C ...
    "a convolution or pooling by a library": re.compile(
        r"(?<![\w.])(correlate|correlate2d|convolve2d|fftconvolve|oaconvolve)\s*\("
        r"|\bsignal\.\w*(correlate|convolve)|\b(sliding_window_view|as_strided)\s*\("),
}
# Lines that match a form but were read and are not an answer: (release path, line) -> why.
ANSWER_FORMS_REVIEWED = {
    ("cs231n/fast_layers.pyx", "k = (size - 1 - offset) // stride + 1"):
        "a cdef index bound of im2col's loops, not callable from Python; the fast layers' output "
        "sizes come from the student's conv_output_shape",
}
ANSWER_SUFFIXES = (".py", ".pyx", ".ipynb", ".md", ".txt")


class ReleaseError(RuntimeError):
    """The release could not be built, or would leak; the message lists what and where."""


def generate_notebooks(course: Course) -> Path:
    """Run nbgrader generate_assignment; returns the folder it wrote."""
    from nbgrader.apps import NbGraderAPI

    course.root.mkdir(parents=True, exist_ok=True)
    api = NbGraderAPI(config=course.nbgrader_config())
    nbgrader_succeeded(api.generate_assignment(course.assignment_id, force=True, create=True),
                       "generate_assignment", ReleaseError)
    return course.step_dir("release")


def add_package_and_support(release_dir: str | Path) -> None:
    """Add the stubbed package, the support files and the public tests to release_dir."""
    release_dir = Path(release_dir)
    strip_package(PACKAGE, release_dir / "cs231n")
    stored_values.write(release_dir / "cs231n" / "stored_values.npz")  # from the reference, now
    for name, source in SUPPORT_FILES.items():
        target = release_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (release_dir / "tests").mkdir(exist_ok=True)
    for name in PUBLIC_TESTS:
        if (ROOT / "tests" / name).exists():
            shutil.copy2(ROOT / "tests" / name, release_dir / "tests" / name)


def _split_regions(lines: list[str], markers: dict[str, str]) -> tuple[list[str], list[str]]:
    """(inside, outside): the stripped lines within any begin/end marker pair, and the rest."""
    inside: list[str] = []
    outside: list[str] = []
    open_end: str | None = None
    for line in lines:
        text = line.strip()
        if open_end is None and text in markers:
            open_end = markers[text]
        elif text == open_end:
            open_end = None
        else:
            (inside if open_end else outside).append(text)
    return inside, outside


def _cell_sources(nb_path: Path) -> list[str]:
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]


def secrets(package_dir: str | Path = PACKAGE, source_dir: str | Path | None = None) -> set[str]:
    """Lines that must never reach students: solution bodies and hidden tests, long enough to be
    distinctive, and found nowhere in what is published on purpose (given code, public tests,
    support files)."""
    markers = {BEGIN_SOLUTION: END_SOLUTION, HIDDEN_BEGIN: HIDDEN_END}
    sources = [p.read_text(encoding="utf-8") for p in Path(package_dir).rglob("*.py")]
    for nb_path in sorted(Path(source_dir or Course.at().source).glob("*.ipynb")):
        sources += _cell_sources(nb_path)
    sources += [p.read_text(encoding="utf-8") for p in SUPPORT_FILES.values()]
    sources += [(ROOT / "tests" / n).read_text(encoding="utf-8") for n in PUBLIC_TESTS if (ROOT / "tests" / n).exists()]
    secret, public = set(), set()
    for text in sources:
        inside, outside = _split_regions(text.splitlines(), markers)
        secret |= {line for line in inside if len(line) >= MIN_SECRET_LINE}
        public |= set(outside)
    return secret - public


def find_leaks(release_dir: str | Path, package_dir: str | Path = PACKAGE,
               source_dir: str | Path | None = None) -> list[str]:
    """Every way release_dir gives something away, as a list of 'path: what' strings."""
    release_dir = Path(release_dir)
    hidden = secrets(package_dir, source_dir)
    markers = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS")
    leaks = []
    for path in sorted(release_dir.rglob("*")):
        rel = path.relative_to(release_dir).as_posix()
        if any(word in part.lower() for part in path.relative_to(release_dir).parts for word in FORBIDDEN_NAMES):
            leaks.append(f"{rel}: instructor file")
        if path.is_symlink():
            leaks.append(f"{rel}: symbolic link")
            continue
        if not path.is_file():
            continue
        if path.suffix in (".so", ".pyd", ".c", ".db", ".sqlite"):
            leaks.append(f"{rel}: compiled or database file")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if markers.search(text):
            leaks.append(f"{rel}: solution or hidden-test marker")
        lines = {line.strip() for line in text.replace("\\n", "\n").splitlines()}
        for line in lines & hidden:
            leaks.append(f"{rel}: solution or hidden-test line {line[:60]!r}")
        if path.suffix in ANSWER_SUFFIXES:
            leaks += [f"{rel}: gives away {what}: {line[:70]!r}" for line in sorted(lines)
                      for what, form in ANSWER_FORMS.items()
                      if form.search(line) and (rel, line) not in ANSWER_FORMS_REVIEWED]
    return leaks


def build_release(course: Course | None = None, out: str | Path | None = None) -> Path:
    """Build the release in course/release/a2 (and copy it to `out` if given); returns its path.

    Raises ReleaseError if nbgrader fails or the release would leak; `out` is written whole or
    not at all.
    """
    course = course or Course.at()
    release_dir = generate_notebooks(course)
    add_package_and_support(release_dir)
    leaks = find_leaks(release_dir, source_dir=course.source)
    if leaks:
        shutil.rmtree(release_dir)
        raise ReleaseError("the release would leak, so it was removed:\n  " + "\n  ".join(leaks))
    if out is None:
        return release_dir
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(f"{out} exists and is not empty; choose a new folder or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        shutil.copytree(release_dir, tmp, dirs_exist_ok=True)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
