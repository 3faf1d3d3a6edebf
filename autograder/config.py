"""Where things are, and nbgrader's configuration loaded from the project's nbgrader_config.py.

Everything the pipeline needs to know about places comes from here, so a test can point a whole
run at a temporary course folder by giving `course_dir` (or $CS231N_COURSE_DIR).
"""
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_ID = "a2"
PACKAGE = ROOT / "cs231n"


@dataclass(frozen=True)
class Course:
    """The course working tree: nbgrader's folders and gradebook under one root."""

    root: Path
    db_url: str
    source_root: Path = ROOT / "assignments"
    assignment_id: str = ASSIGNMENT_ID

    @classmethod
    def at(cls, course_dir=None, db_url=None, source_root=None):
        root = Path(course_dir or os.environ.get("CS231N_COURSE_DIR") or ROOT / "course").resolve()
        url = db_url or os.environ.get("CS231N_DB_URL") or f"sqlite:///{root / 'gradebook.db'}"
        return cls(root=root, db_url=url, source_root=Path(source_root or ROOT / "assignments").resolve())

    @property
    def source(self):
        return self.source_root / self.assignment_id

    def step_dir(self, step, student_id="."):
        """nbgrader's layout: root/<step>/<student>/<assignment> (student '.' for release)."""
        return (self.root / step / student_id / self.assignment_id).resolve()

    def nbgrader_config(self, **overrides):
        """nbgrader's traitlets Config: nbgrader_config.py, then this course's places."""
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
        config.merge(Config({"CourseDirectory": {
            "root": str(self.root), "db_url": self.db_url, "source_directory": str(self.source_root),
        }}))
        config.merge(Config(overrides))
        return config


def nbgrader_succeeded(result, step, error=RuntimeError):
    """result, the dict an NbGraderAPI call returns, if it says success; else raise `error`
    carrying nbgrader's own error text (or its log) under the name of the step."""
    if not result["success"]:
        raise error(f"nbgrader {step} failed:\n{result.get('error') or result.get('log')}")
    return result
