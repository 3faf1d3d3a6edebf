"""The assignment's one scale, computed from the source notebooks' graded cells.

The total is the notebooks' required points (every graded cell whose id does not start with
`extra_`); extra credit (`extra_` cells, and notebooks that are extra credit as a whole) adds to
a score on top of it. Function tests carry no points of their own: they decide whether a
notebook check keeps its points (autograder.results.evidence). Every place that states a total (the
student README, the notebooks' headers, the feedback page, grades.csv, the summary, Gradescope)
states this one; tests/test_scale.py keeps them equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FUNCTIONS_SENTENCE = ("Function tests carry no points of their own: a notebook check keeps its points only "
                      "when your functions it uses also pass the grader's tests on other inputs.")


@dataclass(frozen=True)
class Scale:
    """required: the total; extra: the most extra credit; written: the required points graded by
    hand; notebooks: {notebook: (required, extra)} in the source's order of names."""

    required: float
    extra: float
    written: float
    notebooks: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def autograded(self) -> float:
        """The required points the autograder gives (all but the written answers)."""
        return self.required - self.written


def course_scale(source_dir: str | Path) -> Scale:
    """The Scale of the source notebooks in source_dir."""
    import nbformat

    from autograder.results.evidence import cell_claims

    claims = cell_claims(source_dir)
    required = extra = written = 0.0
    notebooks: dict[str, tuple[float, float]] = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        mine = [0.0, 0.0]  # required, extra
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            is_extra = meta["grade_id"].startswith("extra_")
            mine[is_extra] += meta.get("points", 0)
            claim = claims[path.stem].get(meta["grade_id"])
            if claim is not None and claim.manual and not is_extra:
                written += meta.get("points", 0)
        notebooks[path.stem] = (mine[0], mine[1])
        required, extra = required + mine[0], extra + mine[1]
    return Scale(required, extra, written, notebooks)


def where_to_enter(scale: Scale) -> list[str]:
    """Lines telling the instructor what total to enter in the LMS and on Gradescope."""
    return [f"the assignment is out of {scale.required:g} points; extra credit adds up to {scale.extra:g} more",
            f"LMS: enter {scale.required:g} as the maximum and grades.csv's score as the grade (it may exceed "
            f"{scale.required:g} by the extra credit)",
            f"Gradescope: give the autograder {scale.autograded:g} points and a manual question of "
            f"{scale.written:g} points for the written answers ({scale.autograded:g} + {scale.written:g} = "
            f"{scale.required:g})"]

