"""nbgrader's exchange, for a course on JupyterHub: `release --exchange`, `grade --exchange` (nbgrader
collect of a screened copy of inbound/, then autograder.intake.collect) and `feedback --exchange`.
Its place and the course id come from nbgrader's configuration or $CS231N_EXCHANGE.
docs/jupyterhub.md and docs/grading.md, "Intake".
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.config import nbgrader_succeeded

if TYPE_CHECKING:
    from autograder.config import Course
    from autograder.intake.collect import Collected

INBOX = "exchange_inbox"  # nbgrader collect's course root, inside the course folder
SCREENED = "exchange_screened"  # the screened copy of inbound/ that nbgrader collects from (autograder.intake.inbound)
OUTBOX = "exchange_outbox"  # release_feedback's course root: one page per submitted notebook


class ExchangeError(RuntimeError):
    """An exchange step failed; the message carries nbgrader's own error."""


def _api(course: Course, root: Path | None = None, exchange_root: str | Path | None = None,
         trusted_owners: bool = False) -> Any:
    """nbgrader's API on course (or on another course root, a staging folder, for one step).
    trusted_owners: collect from a screened copy whose owners were checked already."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = course.nbgrader_config()
    config.merge(_system_exchange_config())
    overrides: dict[str, dict[str, Any]] = {}
    exchange_root = exchange_root or os.environ.get("CS231N_EXCHANGE")
    if exchange_root:
        overrides["Exchange"] = {"root": str(exchange_root)}
    if trusted_owners:
        overrides["ExchangeCollect"] = {"check_owner": False}
    if root is not None:
        overrides["CourseDirectory"] = {"root": str(root), "db_url": f"sqlite:///{Path(root) / 'gradebook.db'}"}
    config.merge(Config(overrides))
    return NbGraderAPI(config=config)


def _system_exchange_config() -> Any:
    """The exchange settings of the machine's nbgrader configuration (a hub's
    /etc/jupyter/nbgrader_config.py, or one on $JUPYTER_CONFIG_PATH): Exchange.* and the
    course id only; the course's own nbgrader_config.py keeps everything else."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    picked = Config()
    for folder in reversed(jupyter_config_path()):  # the most specific last, as Jupyter reads them
        if (Path(folder) / "nbgrader_config.py").is_file():
            loaded = PyFileConfigLoader("nbgrader_config.py", path=folder).load_config()
            if "Exchange" in loaded:
                picked.merge(Config({"Exchange": loaded.Exchange}))
            if "course_id" in loaded.get("CourseDirectory", {}):
                picked.merge(Config({"CourseDirectory": {"course_id": loaded.CourseDirectory.course_id}}))
    return picked


def _check(result: Any, step: str) -> Any:
    return nbgrader_succeeded(result, step, ExchangeError)


def exchange_path(course: Course, exchange_root: str | Path | None = None) -> Path:
    """The course's folder in the exchange (outbound/, inbound/, feedback/)."""
    return _course_folder(_api(course, exchange_root=exchange_root))


def _course_folder(api: Any) -> Path:
    from nbgrader.exchange.default import Exchange

    return Path(Exchange(coursedir=api.coursedir, parent=api).root) / api.coursedir.course_id


def release_to_exchange(course: Course, exchange_root: str | Path | None = None) -> Path:
    """nbgrader release_assignment of course's release folder (notebooks, package, support
    files: the whole of build_release's output); returns the exchange's outbound folder."""
    _check(_api(course, exchange_root=exchange_root).release_assignment(course.assignment_id), "release_assignment")
    return exchange_path(course, exchange_root) / "outbound" / course.assignment_id


def collect_from_exchange(course: Course, exchange_root: str | Path | None = None) -> list[Collected]:
    """nbgrader collect, of a screened copy of the exchange's inbound folder (autograder.intake.inbound),
    into course/exchange_inbox/; then autograder.intake.collect into submitted/.

    Returns the list of autograder.intake.collect.Collected (refused ones carry their error)."""
    from autograder.intake.collect import Collected, collect
    from autograder.intake.inbound import screen

    api = _api(course, exchange_root=exchange_root)
    inbound = _course_folder(api) / "inbound"
    if not inbound.is_dir():
        raise ExchangeError(f"the exchange has no inbound folder at {inbound}: release the assignment first "
                            "(python -m autograder release --exchange)")
    screened = course.root / SCREENED
    shutil.rmtree(screened, ignore_errors=True)
    view = screened / api.coursedir.course_id / "inbound"
    view.mkdir(parents=True)
    refused = screen(inbound, view, course.assignment_id, api.coursedir.max_dir_size * 1000)
    inbox = course.root / INBOX
    inbox.mkdir(parents=True, exist_ok=True)
    try:
        _check(_api(course, root=inbox, exchange_root=screened, trusted_owners=True).collect(course.assignment_id),
               "collect")
    finally:
        shutil.rmtree(screened, ignore_errors=True)
    staged = inbox / "submitted"
    collected = collect(staged, course) if staged.is_dir() else []
    return collected + [Collected(r.owner or "?", inbound / r.name, error=f"not collected from the exchange: {r.why}")
                        for r in refused]


def release_feedback_to_exchange(course: Course, pages: dict[str, Path],
                                 exchange_root: str | Path | None = None) -> list[str]:
    """Send each student's feedback page back through the exchange.

    pages: {student_id: feedback.html path}. nbgrader's fetch_feedback finds feedback by a hash
    of each submitted notebook's name and the submission's secret, so the page is released once
    under every notebook name of the student's collected submission. Returns the students sent."""
    inbox, outbox = course.root / INBOX, course.root / OUTBOX
    shutil.rmtree(outbox, ignore_errors=True)
    sent = []
    for sid, page in sorted(pages.items()):
        submitted = inbox / "submitted" / sid / course.assignment_id
        secret = submitted / "submission_secret.txt"
        if not secret.is_file():
            continue  # not submitted through the exchange
        folder = outbox / "feedback" / sid / course.assignment_id
        folder.mkdir(parents=True)
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copyfile(submitted / name, folder / name)
        for notebook in sorted(submitted.glob("*.ipynb")):
            shutil.copyfile(page, folder / f"{notebook.stem}.html")
        sent.append(sid)
    if sent:
        _check(_api(course, root=outbox, exchange_root=exchange_root).release_feedback(course.assignment_id),
               "release_feedback")
    return sent
