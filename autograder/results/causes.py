"""Why points were lost, in the grader's words: the first box of a student's feedback page.

At grading time `note_stops` reads each autograded notebook for where it went wrong (a Stops:
the cell out of time, the first not run, the first that raised, by exception NAME only); at page
time `causes` makes sentences of those facts, of the judge's import failures and of the answers
waiting for staff. docs/publishing.md, "Causes first".
"""
from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from autograder.budget import TimeBudget
from autograder.results.records import CellGrade, FunctionCase, GradeResult, NotebookGrades, Stop, Stops

GRADER_ERRORS = ("NotRun", "CellTimeoutError", "DeadKernelError", "MessageTooLarge")
IMPORT_FAILED = re.compile(r"importing (cs231n[\w.]*) raised (\w{1,60})(?:: .*\((\w{1,60}\.py), line (\d{1,7})\))?")
GENERIC = "some notebooks could not be run to the end"  # results.problems' sentence, when nothing finer is known
KNOWN_EXCEPTIONS = frozenset({name for name, value in vars(builtins).items()
                              if isinstance(value, type) and issubclass(value, BaseException)}
                             | {"LinAlgError", "AxisError"})


def _exception_name(ename: str) -> str:
    """Python's own exception names (and numpy's two) as they are; any other name is a class the
    student's kernel made, and its name, chosen after hidden tests ran, could carry them out."""
    return ename if ename in KNOWN_EXCEPTIONS else "an exception of a class of its own"


def _errors(cell: Any) -> list[Any]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def read_stops(path: str | Path, budget: TimeBudget) -> Stops:
    """Where the notebook at path went wrong: its first error, the cell that ran out of time, the
    first cell not run and every graded cell not run; the limits it ran under from budget."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    found: dict[str, Stop] = {}
    after, did_not_run = "", []
    for position, cell in enumerate(nb.cells, start=1):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or ""
        after = grade_id or after
        names = [o.get("ename") for o in _errors(cell)]
        if "NotRun" in names:
            found.setdefault("not_run", Stop(position, after))
            if grade_id:
                did_not_run.append(grade_id)
        elif "CellTimeoutError" in names:
            found.setdefault("timed_out", Stop(position, after))
        elif names and "error" not in found and not set(names) & set(GRADER_ERRORS):
            found["error"] = Stop(position, after, _exception_name(names[0]))
    return Stops(budget.cell, budget.notebook, did_not_run=tuple(did_not_run), **found)


def note_stops(notebooks: Sequence[NotebookGrades], autograded_dir: str | Path,
               budget: TimeBudget) -> list[NotebookGrades]:
    """The notebooks (evidence.read_notebook_grades'), each with its `stops` (read_stops), and a
    check the grader never ran saying "did not run" (not "failed")."""
    from autograder.results.evidence import DID_NOT_RUN, FAILED

    out = []
    for nb in notebooks:
        path = Path(autograded_dir) / f"{nb.notebook}.ipynb"
        if path.is_file():
            stops = read_stops(path, budget)
            nb = replace(nb, stops=stops, grades=tuple(
                replace(g, message=DID_NOT_RUN) if g.name in stops.did_not_run and g.message == FAILED else g
                for g in nb.grades))
        out.append(nb)
    return out


def source_layout(source_dir: str | Path) -> dict[str, list[tuple[str, str]]]:
    """{notebook: [(grade_id, section heading)]} of the source notebooks' cells that have a grade
    id, in notebook order; the section is the last markdown heading above the cell."""
    import nbformat

    layout: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        section, cells = "", list[tuple[str, str]]()
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                headings = [line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("#")]
                section = headings[-1] if headings else section
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id:
                cells.append((grade_id, section))
        layout[path.stem] = cells
    return layout


def _where(stop: Stop, sections: dict[str, str]) -> str:
    """'cell 14 (at or after relu_check, in "ReLU")'."""
    if not stop.after:
        return f"cell {stop.cell}"
    section = sections.get(stop.after)
    return f"cell {stop.cell} (at or after {stop.after}" + (f', in "{section}")' if section else ")")


ImportFailure = tuple[str, str, str | None, str | None]  # (module, exception, file, line)


def import_failures(functions: Iterable[FunctionCase]) -> dict[ImportFailure, list[FunctionCase]]:
    """{(module, exception, file, line): cases} of the judge's cases that failed because a file of
    the package does not import."""
    found: dict[ImportFailure, list[FunctionCase]] = {}
    for f in functions:
        m = IMPORT_FAILED.match(f.message or "")
        if m and not f.passed:
            module, exception, file, line = m.groups()
            found.setdefault((module, exception, file, line), []).append(f)
    return found


def _package_path(file: str) -> str:
    """'cs231n/classifiers/fc_net.py' for 'fc_net.py', a file of the package students edit."""
    from cs231n.tasks import TASKS_BY_FILE

    return next((f"cs231n/{path}" for path in TASKS_BY_FILE if path.split("/")[-1] == file), file)


def import_sentences(functions: Iterable[FunctionCase]) -> list[str]:
    """One sentence for each file of the package that does not import."""
    by_file: dict[tuple[str, str, str | None], int] = {}
    for (module, exception, file, line), cases in import_failures(functions).items():
        key = (f"the file {_package_path(file)}" if file else f"the module {module}", exception, line)
        by_file[key] = by_file.get(key, 0) + len(cases)
    return [f"{file} does not import: {exception}" + (f" at line {line}" if line else "")
            + f"; the {n} function test{'s' if n != 1 else ''} that need it could not run."
            for (file, exception, line), n in sorted(by_file.items())]


def notebook_causes(nb: NotebookGrades, result: GradeResult, sections: dict[str, str] | None = None) -> list[str]:
    """Sentences on what went wrong in one notebook of a GradeResult ([] when it ran to its end).
    sections: {grade id: section heading} of its source."""
    name, stops, sections = nb.notebook, nb.stops or Stops(), sections or {}
    reason = nb.not_attempted
    if reason:
        return [f"{name} {reason}" if reason.startswith("could not be read") else f"{name}: {reason}"]
    found = []
    if name in result.timed_out:
        at = stops.timed_out or stops.not_run
        limit = (f"a cell may run {stops.cell_timeout} s" if stops.timed_out and stops.cell_timeout
                 else f"a notebook may run {stops.notebook_budget} s in all" if stops.notebook_budget else "")
        found.append(f"{name} ran out of time" + (f" at {_where(at, sections)}" if at else "")
                     + (f": {limit}" if limit else "") + "; the cells after it did not run.")
    elif name in result.kernel_died:
        at = stops.not_run
        found.append(f"{name}: its kernel died (it ended itself, or passed its memory or process limits)"
                     + (f"; from {_where(at, sections)} on, cells did not run." if at else "."))
    if stops.error:
        err = stops.error
        found.append(f"{name}: the first error was in {_where(err, sections)}: {err.exception}; "
                     "the checks that need what that cell makes failed.")
    return found


def causes(result: GradeResult, layout: dict[str, list[tuple[str, str]]] | None = None) -> list[str]:
    """Sentences, most important first: what went wrong in grading this GradeResult."""
    from autograder.results.store import problems, scores

    layout = layout or {}
    found = [sentence for nb in result.notebooks
             for sentence in notebook_causes(nb, result, dict(layout.get(nb.notebook, ())))]
    said = bool(found)  # a notebook's own cause says more than problems()' GENERIC sentence
    found += import_sentences(result.functions)
    pending = scores(result)[2].manual_pending
    if pending:
        found.append(f"{pending} written answer{'s' if pending != 1 else ''} still wait{'s' if pending == 1 else ''} "
                     "to be graded by the course staff.")
    if result.missing_files:
        found.append("Not submitted, so graded as the starter code: " + ", ".join(result.missing_files) + ".")
    found += [p for p in problems(result) if not (said and p == GENERIC)]
    return found


Section = tuple[str, list[CellGrade]]


def in_notebook_order(notebooks: Iterable[NotebookGrades],
                      layout: dict[str, list[tuple[str, str]]]) -> list[tuple[NotebookGrades, list[Section]]]:
    """[(notebook, [(section, [grades])])]: each notebook's checks in the source's order, under
    its section headings (checks the source does not list go last, by name)."""
    out = []
    for nb in notebooks:
        order = {gid: (i, section) for i, (gid, section) in enumerate(layout.get(nb.notebook, ()))}
        grades = sorted(nb.grades, key=lambda g: (order.get(g.name, (len(order), ""))[0], g.name))
        sections: list[Section] = []
        for g in grades:
            section = order.get(g.name, (0, ""))[1]
            if not sections or sections[-1][0] != section:
                sections.append((section, []))
            sections[-1][1].append(g)
        out.append((nb, sections))
    return out
