"""A small assignment in the course's format, and submissions of it, for tests of the pipeline
that must not wait for (or depend on) the real notebooks: one solution cell, one test cell with
hidden tests calling the package, one written answer."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PLAIN_DOUBLE = "def double(x):\n    return 2 * x"
HIDDEN_LINE = "check_close('hidden double of a matrix', double(np.eye(2)), 2 * np.eye(2))"
SOLUTION_LINE = "return 2 * x  # the reference doubling"


def _meta(tasks=None, **kw):
    meta = {"nbgrader": {"schema_version": 3, "locked": False, "solution": False, "grade": False,
                         "task": False, **kw}}
    if tasks is not None:
        meta["cs231n"] = {"tasks": tasks}
    return meta


CODE_ANSWER = "print('my training curve, drawn by hand')"


def toy_notebook(readonly_helper=False, code_answer=False):
    """The toy notebook; readonly_helper puts a locked read-only cell right before test_relu;
    code_answer ends it with a code answer graded by hand (`by_hand`, 5 points), as the PyTorch
    notebook's are."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"},
                                "cs231n": {"points": 6, "extra_credit": 0}})
    nb.cells = [
        new_markdown_cell("# Toy assignment"),
        new_code_cell("import sys\nprint('preloaded:', 'numpy' in sys.modules, 'not used:', 'sklearn' in sys.modules)\n"
                      "import numpy as np\nfrom cs231n.layers import relu_forward\nfrom cs231n.checks import check_close\n"
                      "from cs231n.layer_utils import FAST_LAYERS\nprint('fast layers:', FAST_LAYERS)"),
        new_code_cell(f"def double(x):\n    ### BEGIN SOLUTION\n    {SOLUTION_LINE}\n    ### END SOLUTION",
                      metadata=_meta(solution=True, grade_id="double")),
        new_code_cell("check_close('double', double(3.0), 6.0)\n### BEGIN HIDDEN TESTS\n"
                      f"{HIDDEN_LINE}\n### END HIDDEN TESTS",
                      # checks notebook state only (no task): the kernel's verdict, kept as
                      # score_before_check, earns no points (autograder.results.evidence)
                      metadata=_meta(grade=True, locked=True, grade_id="test_double", points=2, tasks=[])),
        *([new_code_cell("def positive_part(x):\n    return np.maximum(x, 0)",
                         metadata=_meta(locked=True, grade_id="helpers"))] if readonly_helper else []),
        new_code_cell("out, _ = relu_forward(np.array([-1.0, 2.0]))\ncheck_close('relu', out, [0.0, 2.0])",
                      metadata=_meta(grade=True, locked=True, grade_id="test_relu", points=3,
                                     tasks=["relu_forward"])),
        new_markdown_cell("Why does ReLU pass gradients only where its input is positive?"),
        new_markdown_cell("Because its slope is 1 there and 0 elsewhere.",
                          metadata=_meta(solution=True, grade=True, grade_id="why_relu", points=1)),
        *([new_code_cell(f"### BEGIN SOLUTION\n{CODE_ANSWER}\n### END SOLUTION",
                         metadata=_meta(solution=True, grade=True, grade_id="by_hand", points=5))]
          if code_answer else []),
    ]
    return nb


def make_toy_source(source_root, assignment_id="a2", readonly_helper=False, code_answer=False):
    """Write the toy notebook as source_root/<assignment_id>/Toy.ipynb; return source_root."""
    folder = source_root / assignment_id
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(toy_notebook(readonly_helper, code_answer), folder / "Toy.ipynb")
    return source_root


def toy_course(tmp, **source_kw):
    """(course, release): a course folder tmp/course on the toy source in tmp/src (make_toy_source's
    options), its release built."""
    from autograder.config import Course
    from autograder.release.build import build_release

    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}",
                    source_root=make_toy_source(tmp / "src", **source_kw))
    return course, build_release(course)


def assignment_release(tmp):
    """The release of the real assignment (assignments/a2), built by the release step itself
    (autograder.release.build.build_release) in a course folder tmp/course; returns its folder."""
    from autograder.config import ROOT, Course
    from autograder.release.build import build_release

    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}",
                    source_root=ROOT / "assignments")
    return build_release(course)


def make_small_class(source_dir, release_dir, out_dir, reference=("ref1", "ref2"), starter=("st1", "st2")):
    """Submissions: copies of the reference (source notebooks + the repo's package) and of the
    untouched starter (release); returns out_dir."""
    import shutil
    from pathlib import Path

    from autograder.config import PACKAGE

    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc")
    out_dir = Path(out_dir)
    for names, notebooks, package in ((reference, source_dir, PACKAGE), (starter, release_dir, release_dir / "cs231n")):
        for name in names:
            folder = out_dir / name
            folder.mkdir(parents=True)
            for nb in Path(notebooks).glob("*.ipynb"):
                shutil.copyfile(nb, folder / nb.name)
            shutil.copytree(package, folder / "cs231n", ignore=ignore)
    return out_dir


def write_toy_submission(release, folder, solution=PLAIN_DOUBLE, cells=(), layers="", edit=None):
    """One student's submission of the toy in folder: the release's notebook with `solution` in
    the double cell, the code `cells` right after it, then edit(nb) if given; the repo's package
    with `layers` appended to its layers.py."""
    import shutil

    from autograder.config import PACKAGE

    nb = nbformat.read(release / "Toy.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    nb.cells[at].source = solution
    for k, code in enumerate(cells):
        nb.cells.insert(at + 1 + k, new_code_cell(code))
    if edit:
        edit(nb)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "Toy.ipynb")
    shutil.copytree(PACKAGE, folder / "cs231n", ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    if layers:
        with open(folder / "cs231n" / "layers.py", "a") as f:
            f.write(layers)


def grades_by_name(result):
    """{cell name: grade} of a GradeResult's notebooks."""
    return {g.name: g for nb in result.notebooks for g in nb.grades}


def write_server_config(course):
    """The server's nbgrader_config.py: the repo's (its formgrader settings under test), pointed
    at this course."""
    from autograder.config import ROOT as _ROOT

    (course.root / "exchange").mkdir(exist_ok=True)
    (course.root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(_ROOT / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course.root)!r}\n"
        f"c.CourseDirectory.source_directory = {str(course.source_root)!r}\n"
        f"c.CourseDirectory.db_url = {course.db_url!r}\n"
        f"c.Exchange.root = {str(course.root / 'exchange')!r}\n")
