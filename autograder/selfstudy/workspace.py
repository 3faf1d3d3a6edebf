"""A self-learner's workspace: the student release with its own venv and GNUmakefile, made once
and then kept, never written over (docs/self-study.md, "How the workspace is made").

    python -m autograder self-study [WORKSPACE] [--no-lab]     (make self-study)
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Callable

from autograder.config import ROOT, Course

MARKER = ".self-study.json"  # in the workspace: which checkout made it, and when
DEFAULT = ROOT / "workspace"
SHARED_MODULE = "_cs231n_shared_packages"  # in the workspace venv's site-packages
GNUMAKEFILE = """\
# Made by `make self-study` in {project}. GNU make reads this file before Makefile (the
# student's, unchanged): it adds grading your own work and comparing with the reference.
include Makefile

PROJECT := {project}

.PHONY: grade-mine compare
# your notebooks and package graded with the hidden tests, as a student's are: feedback.html
grade-mine:
\tcd "$(PROJECT)" && .venv/bin/python -m autograder grade-mine "$(CURDIR)"
# the reference beside yours, once the task's checks pass: make compare TASK=conv_forward_naive
compare:
\tcd "$(PROJECT)" && .venv/bin/python -m autograder compare "$(CURDIR)" $(TASK)
"""
SHARED_SITE = '''\
"""This workspace borrows the packages of the checkout that made it ({project}),
without its editable cs231n: that one is the reference, and `cs231n` here is the workspace's."""
import os
import site
import sys

FOLDER = {folder!r}
if os.path.isdir(FOLDER) and FOLDER not in sys.path:
    sys.path.append(FOLDER)
    for name in sorted(os.listdir(FOLDER)):
        if name.endswith(".pth") and not name.startswith("__editable__"):
            site.addpackage(FOLDER, name, None)
'''


class WorkspaceError(RuntimeError):
    """The workspace cannot be made or used; the message says what to do."""


def is_workspace(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def afresh(path: str | Path) -> str:
    """The sentence that says how to start again with a blank copy (the old one kept)."""
    path = Path(path).resolve()
    again = "make self-study" + ("" if path == DEFAULT else f" WORKSPACE={shlex.quote(str(path))}")
    return f"To start afresh, move it away (keeping it) and run again: mv {shlex.quote(str(path))} " \
           f"{shlex.quote(str(path) + '-old')} && {again}"


def make_workspace(path: str | Path = DEFAULT, log: Callable[[str], object] = print) -> tuple[Path, bool]:
    """The workspace at path, made if it does not exist, its set-up finished if unfinished; returns
    (path, made: bool). Never writes over a learner's file. Raises WorkspaceError for a folder that
    holds something else, or when the release or the set-up fails."""
    from autograder.release.build import ReleaseError, build_release

    path = Path(path).resolve()
    if path.exists() and not is_workspace(path) and any(path.iterdir()):
        raise WorkspaceError(f"{path} exists and is not a self-study workspace: give another folder, "
                             "e.g. make self-study WORKSPACE=~/a2-workspace")
    made = not is_workspace(path)
    if made:
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="cs231n-self-study-") as course_dir:
            course = Course(root=Path(course_dir), db_url=f"sqlite:///{course_dir}/gradebook.db")
            try:
                build_release(course, out=path)
            except ReleaseError as error:
                raise WorkspaceError(f"the release could not be built: {error}") from error
        (path / "GNUmakefile").write_text(GNUMAKEFILE.format(project=ROOT))
        (path / MARKER).write_text(json.dumps({"project": str(ROOT), "made": time.strftime("%Y-%m-%d %H:%M:%S")}))
        log(f"workspace made at {path} (the student release, {time.time() - started:.0f} s)")
    else:
        log(f"your workspace is {path}; it is kept as it is, with your work. {afresh(path)}")
    set_up(path, log)
    return path, made


def workspace_python(path: str | Path) -> Path:
    return Path(path) / ".venv" / "bin" / "python"


def set_up(path: str | Path, log: Callable[[str], object] = print) -> None:
    """The workspace's own venv, borrowing this checkout's packages, then the student Makefile's
    `make install` (which builds the workspace's cs231n in place); nothing when done already."""
    venv = Path(path) / ".venv"
    if (venv / ".built").exists():
        return
    started = time.time()
    if not workspace_python(path).exists():
        # the Python this venv was made from (sys._base_executable, CPython's, not in typeshed)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    _borrow_packages(venv)
    (venv / ".installed").touch()  # the student Makefile's stamp: its packages are in place
    build = subprocess.run(["make", "-C", str(path), "install"], capture_output=True, text=True)
    if build.returncode != 0:
        raise WorkspaceError(f"the workspace's `make install` failed (building the fast layers needs a C compiler: "
                             f"apt install build-essential):\n{build.stdout[-2000:]}{build.stderr[-2000:]}")
    log(f"set up {venv} with this checkout's packages and the workspace's own cs231n ({time.time() - started:.0f} s)")


def _borrow_packages(venv: Path) -> None:
    """Give venv this checkout's packages (not its cs231n), console scripts and Jupyter data; its
    configuration (etc/) and kernel specs are copies, so that what the workspace changes there
    (its `make install` disables nbgrader's instructor extensions) stays in the workspace."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = venv / "lib" / version / "site-packages"
    project_site = Path(sysconfig.get_paths()["purelib"]).resolve()
    (site_dir / f"{SHARED_MODULE}.py").write_text(SHARED_SITE.format(project=ROOT, folder=str(project_site)))
    (site_dir / f"{SHARED_MODULE}.pth").write_text(f"import {SHARED_MODULE}\n")
    prefix = Path(sys.prefix)
    if (prefix / "etc").is_dir() and not (venv / "etc").exists():
        shutil.copytree(prefix / "etc", venv / "etc")
    jupyter = prefix / "share" / "jupyter"
    (venv / "share" / "jupyter").mkdir(parents=True, exist_ok=True)
    for entry in sorted(jupyter.iterdir()) if jupyter.is_dir() else []:
        target = venv / "share" / "jupyter" / entry.name
        if target.exists() or target.is_symlink():
            continue
        if entry.name == "kernels":
            shutil.copytree(entry, target)
        else:
            target.symlink_to(entry)  # JupyterLab's assets: only read
    _borrow_scripts(Path(sys.executable).parent, venv / "bin")


def _borrow_scripts(source_bin: Path, target_bin: Path) -> None:
    """The checkout's console scripts (jupyter, pytest, ...) run by the workspace's Python."""
    for script in sorted(source_bin.iterdir()):
        target = target_bin / script.name
        if target.exists() or script.is_symlink() or not script.is_file():
            continue
        text = script.read_bytes()
        if text.startswith(b"#!") and b"python" in text.split(b"\n", 1)[0] and b"\n" in text:
            target.write_bytes(b"#!" + str(target_bin / "python").encode() + text[text.index(b"\n"):])
            target.chmod(0o755)


def open_lab(path: str | Path) -> None:
    """Replace this process with JupyterLab in the workspace (its own venv). Without CIFAR-10 in
    the workspace and no CS231N_DATASET, the notebooks use the offline digits."""
    path = Path(path)
    env = dict(os.environ)
    if "CS231N_DATASET" not in env and not (path / "datasets" / "cifar-10-batches-py").is_dir():
        env["CS231N_DATASET"] = "digits"
        print("no CIFAR-10 in the workspace: the notebooks use the offline digits (CS231N_DATASET=digits); "
              f"`make -C {shlex.quote(str(path))} data` downloads CIFAR-10 (163 MB)")
    argv = [str(path / ".venv" / "bin" / "jupyter"), "lab", f"--notebook-dir={path}",
            *(["--allow-root"] if os.geteuid() == 0 else [])]
    sys.stdout.flush()
    os.chdir(path)
    os.execve(argv[0], argv, env)


def main(path: str | Path, lab: bool = True) -> int:
    """The self-study command: make (or find) the workspace, then open it. Returns an exit code."""
    try:
        path, _ = make_workspace(path)
    except WorkspaceError as error:
        print(f"self-study: {error}", file=sys.stderr)
        return 2
    quoted = shlex.quote(str(path))
    print(f"\nwork in {path}: `make -C {quoted} lab` opens it, `make -C {quoted} check TASK=conv_forward_naive` "
          f"checks one function, `make -C {quoted} grade-mine` grades it all with the hidden tests, "
          f"`make -C {quoted} compare TASK=...` shows the reference of a task once its checks pass")
    if lab:
        open_lab(path)
    return 0
