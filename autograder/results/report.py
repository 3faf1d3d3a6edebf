"""The class at a glance: `report.html`, written by `export` beside grades.csv, for the instructor.

One self-contained page (pictures drawn with matplotlib, embedded as PNG): the scale and what to
enter in the LMS and on Gradescope, the score histogram, the checks and tasks the class found
hardest (pass rates), the time each student's grading took, who was not graded and why, who ran
out of time, and how many written answers still wait for staff.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from autograder.results.causes import causes
from autograder.results.records import GradeResult
from autograder.results.store import scores

if TYPE_CHECKING:
    from autograder.results.scale import Scale

Rate = tuple[str, float, int]  # (name, share passing, students)

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 7.0, height: float = 3.0) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def histogram(totals: list[float], max_score: float) -> str:
    """PNG (base64) of the score distribution."""
    fig, ax = _figure()
    top = max([max_score, *totals]) if totals else max_score
    ax.hist(totals, bins=min(20, max(5, len(totals))), range=(0, top or 1), color="#3b6ea8", edgecolor="white")
    ax.axvline(max_score, color="#a4161a", linestyle="--", label=f"the {max_score:g} required points")
    ax.set_xlabel("score")
    ax.set_ylabel("students")
    ax.legend(loc="upper left")
    return _png(fig)


def bars(rates: list[tuple[str, float]], xlabel: str) -> str:
    """PNG (base64) of horizontal bars, one per (label, value) pair, first at the top."""
    fig, ax = _figure(7.0, 0.6 + 0.28 * max(1, len(rates)))
    labels = [label for label, _ in rates][::-1]
    values = [value for _, value in rates][::-1]
    ax.barh(labels, values, color="#3b6ea8")
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def pass_rates(results: dict[str, GradeResult]) -> tuple[list[Rate], list[Rate]]:
    """([(check, rate, n)], [(task, rate, n)]), hardest first: the share of graded students who
    got a notebook check's full points (hand-graded ones once graded), and who passed every
    hidden case of a task."""
    checks: dict[str, list[bool]] = {}
    tasks: dict[str, list[bool]] = {}
    for result in results.values():
        for nb, g in result.grades():
            if nb.not_attempted.startswith("not attempted"):
                continue  # left out where it was graded (no PyTorch): not a verdict on the class
            if g.needs_manual_grade or not g.max_score:
                continue
            checks.setdefault(f"{nb.notebook}: {g.name}", []).append(g.earned >= g.max_score)
        mine: dict[str, list[bool]] = {}
        for f in result.functions:
            mine.setdefault(f.task, []).append(bool(f.passed))
        for task, passed in mine.items():
            tasks.setdefault(task, []).append(all(passed))

    def ranked(found: dict[str, list[bool]]) -> list[Rate]:
        return sorted(((name, sum(v) / len(v), len(v)) for name, v in found.items()), key=lambda r: (r[1], r[0]))

    return ranked(checks), ranked(tasks)


def summary(results: dict[str, GradeResult], failures: dict[str, str], scale: Scale) -> dict[str, Any]:
    """The report's numbers, as plain data (the page and tests read the same)."""
    rows = []
    for sid, result in sorted(results.items()):
        score, max_score, parts = scores(result)
        rows.append({"student": sid, "score": score, "extra": parts.extra_credit, "pending": parts.manual_pending,
                     "seconds": round(result.seconds.judge + result.seconds.notebooks, 1),
                     "timed_out": list(result.timed_out), "causes": causes(result)})
    checks, tasks = pass_rates(results)
    return {"rows": rows, "checks": checks, "tasks": tasks, "not_graded": sorted(failures.items()),
            "timed_out": [r for r in rows if r["timed_out"]], "pending": sum(r["pending"] for r in rows),
            "max_score": scale.required}


def render(results: dict[str, GradeResult], failures: dict[str, str], scale: Scale, assignment_id: str) -> str:
    """report.html as a str. results: {student: GradeResult} (hand grades in); failures:
    {student: why} of those not graded; scale: autograder.results.scale.Scale."""
    from autograder.results.scale import where_to_enter

    data = summary(results, failures, scale)
    totals = [r["score"] for r in data["rows"]]
    pictures = {"histogram": histogram(totals, scale.required)}
    if data["tasks"]:
        pictures["tasks"] = bars([(name, 100 * rate) for name, rate, _ in data["tasks"]], "% of students passing every case")
    if data["rows"]:
        pictures["time"] = bars([(r["student"], r["seconds"]) for r in data["rows"]], "seconds of grading")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(assignment_id=assignment_id, data=data, pictures=pictures,
                                                      enter=where_to_enter(scale), scale=scale)
