"""The course pipeline: release, collect, grade, feedback, export (python -m autograder)."""
import os
import sys

# nbgrader runs the `alembic` command (from PATH) when it creates a gradebook; a venv's python
# called by its full path does not put the venv's bin/ on PATH, so add it.
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

# nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warning (harmless: nbgrader
# adds the objects itself a line later); keep instructors' terminals readable.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
