"""OverwriteFromSource: nbgrader's OverwriteCells made strict, configured in nbgrader_config.py:
every nbgrader field of a graded cell comes from the gradebook's source (not the submission's
`solution`/`grade` flags), and deleted grade cells are restored after the right predecessor.
docs/grading.md, "Graded cells: metadata from the source"."""
from __future__ import annotations

import logging
from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import OverwriteCells

FLAGS = ("grade", "solution", "task", "locked")


def _grade_id(cell: NotebookNode) -> Any:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def keep_last_of_each_id(nb: NotebookNode, log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Strip the nbgrader metadata of every cell that claims it without a grade id, and of every
    cell but the last that claims a grade id."""
    seen: set[str] = set()
    for cell in reversed(nb.cells):
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        grade_id = _grade_id(cell)
        if not isinstance(grade_id, str) or not grade_id or grade_id in seen:
            log.warning("A cell claims nbgrader metadata %s: made a plain cell",
                        "with the grade id of a later cell" if grade_id in seen else "without a grade id")
            del cell.metadata["nbgrader"]
        else:
            seen.add(grade_id)


class OverwriteFromSource(OverwriteCells):
    """OverwriteCells that takes every nbgrader field of a graded cell from the source."""

    _source_meta: dict[str, dict[str, Any]] | None = None

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        keep_last_of_each_id(nb, self.log)
        self._source_meta = None
        return super().preprocess(nb, resources)

    def source_metadata(self) -> dict[str, dict[str, Any]]:
        """{grade_id: the nbgrader metadata the source gives that cell} of this notebook."""
        if self._source_meta is None:
            source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
            points = {c.name: c.max_score for c in [*source_nb.grade_cells, *source_nb.task_cells]}
            grade = {c.name for c in source_nb.grade_cells}
            solution = {c.name for c in source_nb.solution_cells}
            task = {c.name for c in source_nb.task_cells}
            meta_of: dict[str, dict[str, Any]] = {}
            for cell in source_nb.source_cells:
                meta = {"schema_version": 3, "grade_id": cell.name, "grade": cell.name in grade,
                        "solution": cell.name in solution, "task": cell.name in task, "locked": cell.locked,
                        "checksum": cell.checksum}
                if cell.name in points:
                    meta["points"] = float(points[cell.name])
                meta_of[cell.name] = meta
            self._source_meta = meta_of
        return self._source_meta

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any],
                        cell_index: int) -> tuple[NotebookNode, dict[str, Any]]:
        cell.metadata.pop("cs231n", None)
        grade_id = _grade_id(cell)
        if grade_id is None:
            return cell, resources
        source = self.source_metadata().get(grade_id)
        if source is None:
            self.log.warning("Cell '%s' does not exist in the source: made a plain cell", grade_id)
            del cell.metadata["nbgrader"]
            return cell, resources
        submitted = dict(cell.metadata.nbgrader)
        for field in (*FLAGS, "points"):
            if field in source and submitted.get(field) != source[field]:
                self.report_change(grade_id, field, source[field], submitted.get(field))
        cell.metadata.nbgrader = dict(source)
        return super().preprocess_cell(cell, resources, cell_index)

    def add_missing_grade_cells(self, nb: NotebookNode,
                                resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_ids = [cell.name for cell in source_nb.source_cells]
        source_by_id = {cell.name: cell for cell in source_nb.source_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in sorted(source_nb.grade_cells, key=lambda c: source_ids.index(c.name)):
            present = [_grade_id(cell) for cell in nb.cells]
            if grade_cell.name in present:
                continue
            self.log.warning(f"Missing grade cell {grade_cell.name} encountered, adding to notebook")
            cell = self.missing_cell_transform(source_by_id[grade_cell.name], grade_cell.max_score,
                                               is_solution=grade_cell.name in solution_ids)
            position = 0
            for earlier in reversed(source_ids[:source_ids.index(grade_cell.name)]):
                if earlier in present:
                    position = present.index(earlier) + 1
                    break
            nb.cells.insert(position, cell)
        return nb, resources
