"""Where things are, and nbgrader's configuration loaded from the project's nbgrader_config.py.

Everything the pipeline needs to know about places comes from here, so a test can point a whole
run at a temporary course folder by giving `course_dir` (or $CS231N_COURSE_DIR).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from traitlets.config import Config

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
    def at(cls, course_dir: str | Path | None = None, db_url: str | None = None,
           source_root: str | Path | None = None) -> Course:
        root = Path(course_dir or os.environ.get("CS231N_COURSE_DIR") or ROOT / "course").resolve()
        url = db_url or os.environ.get("CS231N_DB_URL") or f"sqlite:///{root / 'gradebook.db'}"
        return cls(root=root, db_url=url, source_root=Path(source_root or ROOT / "assignments").resolve())

    @property
    def source(self) -> Path:
        return self.source_root / self.assignment_id

    def step_dir(self, step: str, student_id: str = ".") -> Path:
        """nbgrader's layout: root/<step>/<student>/<assignment> (student '.' for release)."""
        return (self.root / step / student_id / self.assignment_id).resolve()

    def nbgrader_config(self, **overrides: Any) -> Config:
        """nbgrader's traitlets Config: nbgrader_config.py, then this course's places."""
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
        config.merge(Config({"CourseDirectory": {
            "root": str(self.root), "db_url": self.db_url, "source_directory": str(self.source_root),
        }}))
        config.merge(Config(overrides))
        return config


# What must never reach a process that handles student data, nor a command line: the gradebook's
# URL (it may hold the password) and libpq's password variable.
SECRET_ENV = ("CS231N_DB_URL", "PGPASSWORD")


class SecretOnCommandLine(ValueError):
    """A password was given on the command line, which every user of the machine can read."""


def _secret_query_keys(url: URL) -> list[str]:
    return sorted(k for k in url.query if "password" in k.lower())


def check_command_line_url(text: str, option: str = "--db-url") -> None:
    """Raise SecretOnCommandLine when the database URL given as `option` holds a password (in its
    user part or its query), or cannot be read (it is then never echoed)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(text)
    except Exception:  # noqa: BLE001 - whatever the parser says could quote the URL
        raise SecretOnCommandLine(f"{option} is not a database URL (dialect://user@host:port/database); nothing "
                                  "was done") from None
    if url.password is None and not _secret_query_keys(url):
        return
    bare = url._replace(password=None).difference_update_query(_secret_query_keys(url))
    raise SecretOnCommandLine(
        f"{option} holds a password, and every user of this machine can read a command line (ps, "
        f"/proc/PID/cmdline): nothing was done. Give the URL without it, {option} "
        f"{bare.render_as_string(hide_password=False)}, and put the password in ~/.pgpass (a line "
        f"{url.host or 'HOST'}:{url.port or '*'}:{url.database or '*'}:{url.username or 'USER'}:PASSWORD, "
        "chmod 600) or in a chmod-600 file named by $PGPASSFILE; or give the whole URL in the environment "
        "variable CS231N_DB_URL instead (only its owner can read a process's environment). Then change "
        "the password: it has been on a command line, and perhaps in your shell's history.")


def shown_url(text: str) -> str:
    """A database URL fit for messages and logs: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(text)
    except Exception:  # noqa: BLE001
        return "(a database URL that cannot be read)"
    return url.update_query_dict({k: "HIDDEN" for k in _secret_query_keys(url)}).render_as_string(hide_password=True)


def nbgrader_succeeded(result: dict[str, Any], step: str,
                       error: type[Exception] = RuntimeError) -> dict[str, Any]:
    """result, the dict an NbGraderAPI call returns, if it says success; else raise `error`
    carrying nbgrader's own error text (or its log) under the name of the step."""
    if not result["success"]:
        raise error(f"nbgrader {step} failed:\n{result.get('error') or result.get('log')}")
    return result
