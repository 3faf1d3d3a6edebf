"""What a run's kernel zygote imports before it forks: what the assignment uses, found in its
source notebooks and the course package's modules they reach (autograder.notebooks.preload)."""
import json

from autograder.config import PACKAGE, ROOT
from autograder.notebooks.preload import ALWAYS, EVERY_MODULE, WHEN_USED, imported_modules, modules_to_preload
from course_fixtures import make_toy_source


def _notebook(path, *cells):
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": cell, "metadata": {}, "outputs": []}
                                          for cell in cells] + [{"cell_type": "markdown", "source": "import torch"}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_the_real_assignment_preloads_every_module_it_used_to():
    """The real notebooks use numpy, scipy, matplotlib, and through cs231n.data_utils (imports inside
    its functions) sklearn's digits and skimage: the list its grading was measured with."""
    notebooks = sorted((ROOT / "assignments" / "a2").glob("*.ipynb"))
    assert len(notebooks) == 7
    assert modules_to_preload(notebooks, PACKAGE) == EVERY_MODULE
    assert "sklearn.datasets.load_digits" in imported_modules(notebooks, PACKAGE)  # only cs231n imports it


def test_the_toy_assignment_preloads_ipykernel_and_numpy_only(tmp_path):
    source = make_toy_source(tmp_path)
    assert modules_to_preload(sorted((source / "a2").glob("*.ipynb")), PACKAGE) == (*ALWAYS, "numpy")


def test_what_counts_magics_broken_cells_and_imports_inside_functions(tmp_path):
    """Counted: what notebooks import, what importing a package module imports (relative imports
    too), and imports inside the functions of a module the notebooks name (they call them). Not:
    magics, shell escapes, cells that do not parse, markdown, modules nothing reaches, and imports in
    the functions of a module only another module imports."""
    package = tmp_path / "course_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .. import helper\n")
    (package / "helper.py").write_text("import numpy\ndef net():\n    import torch\n")
    (package / "data.py").write_text("def digits():\n    from sklearn import datasets\n    return datasets\n")
    (package / "lonely.py").write_text("import skimage\n")  # no notebook reaches it
    (package / "sub" / "far.py").write_text("from ... import nothing\n")  # above the top package
    notebook = _notebook(tmp_path / "N.ipynb", "%matplotlib inline\nfrom course_pkg.data import digits",
                         "def broken(:\n    import scipy", "from course_pkg.sub import far\n!pip install skimage")
    found = imported_modules([notebook], package)
    assert {"course_pkg.sub.far", "course_pkg.helper", "numpy", "sklearn", "sklearn.datasets"} <= found
    assert not {"matplotlib", "scipy", "torch", "skimage", "nothing"} & {name.split(".")[0] for name in found}
    assert modules_to_preload([notebook], package) == (*ALWAYS, "numpy", "sklearn.datasets")


def test_every_module_a_zygote_may_preload_is_installed():
    """A name in WHEN_USED that no longer imports would be dropped silently in every run's zygote
    (it logs 'not preloaded'): each must be found here, where the kernels' venv is."""
    import importlib.util

    for name in (*ALWAYS, *WHEN_USED):
        assert importlib.util.find_spec(name) is not None, name


def test_a_submission_s_imports_choose_nothing_the_zygote_imports(tmp_path):
    """The jobs of a run carry the list made once from the instructor's source: a submission
    whose notebook imports sklearn, matplotlib and a module of its own does not reach it."""
    import nbformat

    from autograder.grading.grade import pending_jobs, prepare
    from autograder.intake.collect import collect
    from course_fixtures import toy_course, write_toy_submission

    course, release = toy_course(tmp_path)
    write_toy_submission(release, tmp_path / "subs" / "greedy",
                         cells=["import sklearn.datasets, matplotlib.pyplot\nimport cs231n.mine"])
    (tmp_path / "subs" / "greedy" / "cs231n" / "mine.py").write_text("import skimage.data\n")
    assert not [c.error for c in collect(tmp_path / "subs", course) if c.error]
    submitted = nbformat.read(course.step_dir("submitted", "greedy") / "Toy.ipynb", as_version=4)
    assert any("sklearn" in cell.source for cell in submitted.cells if cell.cell_type == "code")
    jobs = pending_jobs(course, None, False, prepare(course))
    assert [job.preload for job in jobs] == [(*ALWAYS, "numpy")]
