"""Turn the instructor's package into the students' starter code.

Every solution region of a .py file is replaced by nbgrader's stub, with nbgrader's own
ClearSolutions code (the same that clears notebook cells), so notebooks and package follow one
marker syntax and one stub. Before clearing, a file's markers are checked: each must stand alone
on its line, regions must close and must not nest, so that a stray mention of a marker in a
docstring can never swallow code.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from nbformat.v4 import new_code_cell

from cs231n.tasks import BEGIN_SOLUTION, END_SOLUTION, STUB, tasks_in_file

if TYPE_CHECKING:
    from nbgrader.preprocessors import ClearSolutions

_BEGIN_WORDS = BEGIN_SOLUTION.lstrip("# ")
_END_WORDS = END_SOLUTION.lstrip("# ")


class MarkerError(ValueError):
    """A file's solution markers are malformed; the message names the file and line."""


def check_markers(source: str, name: str = "<source>") -> None:
    """Raise MarkerError unless every marker line is exact and the regions pair up."""
    open_line = None
    for i, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if _BEGIN_WORDS in line or _END_WORDS in line:
            if text not in (BEGIN_SOLUTION, END_SOLUTION):
                raise MarkerError(f"{name}:{i}: a marker must stand alone on its line as "
                                  f"'{BEGIN_SOLUTION}' or '{END_SOLUTION}', found {text!r}")
            if text == BEGIN_SOLUTION:
                if open_line is not None:
                    raise MarkerError(f"{name}:{i}: region opened at line {open_line} is not closed")
                open_line = i
            else:
                if open_line is None:
                    raise MarkerError(f"{name}:{i}: '{END_SOLUTION}' without a region to close")
                open_line = None
    if open_line is not None:
        raise MarkerError(f"{name}:{open_line}: region is never closed with '{END_SOLUTION}'")


def _clearer() -> ClearSolutions:
    from nbgrader.preprocessors import ClearSolutions

    return ClearSolutions(begin_solution_delimeter=BEGIN_SOLUTION,
                          end_solution_delimeter=END_SOLUTION, code_stub={"python": STUB})


def strip_solutions(source: str, name: str = "<source>") -> str:
    """The source with every solution region replaced by the stub (a str)."""
    check_markers(source, name)
    cell = new_code_cell(source)
    _clearer()._replace_solution_region(cell, "python")
    return cell.source


def strip_package(src_dir: str | Path, dst_dir: str | Path, keep_binaries: bool = False) -> list[str]:
    """Copy the package at src_dir to dst_dir with every .py file's solutions stripped.

    Caches are left out; so are compiled extensions (and the C that Cython generated) unless
    keep_binaries is True, since students build their own. Returns the list of task names
    stubbed. dst_dir must not exist yet.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if dst_dir.exists():
        raise FileExistsError(f"{dst_dir} exists; strip_package writes a fresh copy only")
    ignore = ["__pycache__", "*.pyc", ".ipynb_checkpoints"]
    if not keep_binaries:
        ignore += ["*.so", "*.pyd", "fast_layers.c"]
    shutil.copytree(src_dir, dst_dir, ignore=shutil.ignore_patterns(*ignore))
    tasks = []
    for path in sorted(dst_dir.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tasks += [t.name for t in tasks_in_file(path)]
        path.write_text(strip_solutions(source, str(path.relative_to(dst_dir.parent))), encoding="utf-8")
    return tasks

