"""A fix to one of nbgrader's preprocessors, configured in nbgrader_config.py.

nbgrader 0.9.6's OverwriteCells.add_missing_grade_cells puts a deleted test cell back after the
cell that preceded it in the source, looking that cell up among the submission's grade and
solution cells only. When the preceding source cell is a locked read-only cell (nbgrader's
"Read-only" cell type, e.g. helper functions the tests call), the lookup fails with a KeyError
and the whole notebook scores 0 (measured here on BatchNormalization.ipynb). This subclass looks
the predecessor up among every cell that carries an nbgrader id, and when that one is gone too,
walks further back; with nothing before it, the cell goes first.
"""
from nbgrader.preprocessors import OverwriteCells


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


class RestoreDeletedCells(OverwriteCells):
    """OverwriteCells whose restoring of deleted grade cells survives read-only predecessors."""

    def add_missing_grade_cells(self, nb, resources):
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
