"""nbgrader's configuration for this course: the one place its settings live.

nbgrader reads this file when run from this folder (`nbgrader ...`, `make lab`); the autograder
(python -m autograder) loads it too. The course working tree (release/, submitted/,
autograded/, feedback/, the gradebook) lives in course/ (git-ignored) or in $CS231N_COURSE_DIR;
the sources are assignments/<assignment>/. The gradebook is SQLite unless $CS231N_DB_URL names
another SQLAlchemy URL (e.g. postgresql://user@host/db).
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE = Path(os.environ.get("CS231N_COURSE_DIR") or HERE / "course").resolve()

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "cs231n"
c.CourseDirectory.root = str(COURSE)
c.CourseDirectory.source_directory = str(HERE / "assignments")
c.CourseDirectory.db_url = os.environ.get("CS231N_DB_URL") or f"sqlite:///{COURSE / 'gradebook.db'}"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.so", "*.c"]

# One marker syntax for notebooks and the package (cs231n/tasks.py holds the same strings).
c.ClearSolutions.begin_solution_delimeter = "### BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "### END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Grading: every graded cell's nbgrader metadata from the source, deleted test cells restored,
# every cell bounded, outputs kept small.
c.OverwriteCells.add_missing_cells = True
# nbgrader's OverwriteCells trusts the submission's solution/grade flags, and its restoring of
# deleted test cells fails after a read-only cell; OverwriteFromSource also replaces DeduplicateIds
sys.path.insert(0, str(HERE))
from autograder.notebooks.nbgrader_fixes import OverwriteFromSource  # noqa: E402
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, OverwriteKernelspec  # noqa: E402

c.Autograde.sanitize_preprocessors = [ClearOutput, OverwriteKernelspec, OverwriteFromSource, CheckCellMetadata]
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
c.Execute.error_on_timeout = {"ename": "CellTimeoutError", "evalue": "the cell ran longer than the per-cell time limit",
                             "traceback": []}
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40

# Pages staff open (docs/grading.md, "Pages staff open"): formgrader renders the autograded
# notebook on the Jupyter server's own origin. Grading stores it inert (autograder.notebooks.inert); this
# also sanitises what nbconvert renders of outputs (formgrader's markdown cells it does not).
c.HTMLExporter.sanitize_html = True
