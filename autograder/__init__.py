"""The course pipeline: release, collect, grade, feedback, export (python -m autograder)."""
import os
import sys

# nbgrader runs the `alembic` command (from PATH) when it creates a gradebook; a venv's python
# called by its full path does not put the venv's bin/ on PATH, so add it.
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
