"""Submitted notebooks that cannot be read: set aside before nbgrader, so they cost themselves only.

nbgrader autogrades a student's notebooks in one run, and any notebook it cannot read (not JSON,
nested past Python's recursion limit, not a valid notebook) fails that whole run: the student's
valid notebooks scored 0 too. Each submitted notebook is read here first, bounded in size and
depth, with each cell's nbgrader metadata an object (nbgrader's own reading of it fails the run); one that cannot be read is left out of the run and reported as "could not be read: why",
0 for its cells (the student's failure, not the grader's: the others are graded as usual).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autograder.notebooks.optional import SetAside

if TYPE_CHECKING:
    from nbformat import ValidationError

MAX_BYTES = 20 << 20  # as collect's largest file: a bigger notebook cannot have been collected
MAX_DEPTH = 100  # of nested lists and objects (a notebook has ~8; nbgrader copies them recursively)
HOW_TO_FIX = "open it in Jupyter, check that it shows your work, save it and hand it in again"


def _depth(value: object) -> int:
    """How deeply lists and dicts nest in value (0 for a scalar), without recursion."""
    deepest, todo = 0, [(value, 1)]
    children: Any
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        todo.extend((child, level + 1) for child in children)
    return deepest


def _invalid(error: ValidationError) -> str:
    """'cells/3/execution_count must be integer or null', from nbformat's validation error, in
    words of the format's schema (the student's own text is not repeated)."""
    where = "/".join(str(part)[:40] for part in list(error.absolute_path)[:8]) or "the notebook"
    rule, wanted = error.validator, error.validator_value
    if rule == "type":
        return f"{where} must be {' or '.join(wanted) if isinstance(wanted, list) else wanted}"
    if rule == "required":
        missing = [name for name in wanted if isinstance(error.instance, dict) and name not in error.instance]
        return f"{where} lacks {', '.join(missing) or 'a required field'}"
    return f"{where} breaks the notebook format's rule {rule!r}"


def why_unreadable(path: str | Path) -> str | None:
    """Why the notebook at path cannot be graded ('not valid JSON: ...'), or None if it can."""
    import nbformat

    size = Path(path).stat().st_size
    if size > MAX_BYTES:
        return f"it is {size >> 20} MB, more than the {MAX_BYTES >> 20} MB a notebook may be"
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return f"it is not UTF-8 text (byte {error.start})"
    except RecursionError:
        return f"it nests lists or objects more than {MAX_DEPTH} deep"
    except ValueError as error:
        return f"it is not valid JSON ({error})"
    if _depth(data) > MAX_DEPTH:
        return f"it nests lists or objects more than {MAX_DEPTH} deep"
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        return "it is JSON but not a notebook (no nbformat version)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing cell id is added, as Jupyter would
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return f"it is not a valid notebook: {_invalid(error)}"
    except Exception as error:  # noqa: BLE001 - whatever nbformat cannot read, nbgrader cannot either
        return f"it is not a notebook nbformat {nbformat.__version__} can read ({type(error).__name__}: {str(error)[:200]})"
    for number, cell in enumerate(nb.cells):
        if not isinstance(cell.metadata.get("nbgrader", {}), dict):  # nbgrader reads it as one
            return f"cell {number}'s nbgrader metadata is not an object"
    return None


def set_aside_unreadable(submission_dir: str | Path) -> list[SetAside]:
    """Remove from submission_dir every notebook that cannot be read; returns a SetAside for
    each, its reason "could not be read: why; how to fix it"."""
    set_aside: list[SetAside] = []
    for path in sorted(Path(submission_dir).glob("*.ipynb")):
        why = why_unreadable(path)
        if why:
            path.unlink()
            set_aside.append(SetAside(path.stem, f"could not be read: {why}; {HOW_TO_FIX}"))
    return set_aside
