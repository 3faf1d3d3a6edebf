"""The closing account of a grading run, as lines of text (the CLI and the demo print it)."""
from __future__ import annotations

from collections.abc import Iterable

from autograder.intake.collect import Collected, printable
from autograder.results.records import GradeResult
from autograder.results.store import scores


def how_isolated(mode: str) -> str:
    """What a run's isolation mode (GradeResult.isolation: "cgroup v1", "rlimits", "self (...)")
    meant for the students' code, in a sentence for the instructor."""
    who = "as the grader's own user (self mode, without root)" if mode.startswith("self") else "as a user of its own"
    if "cgroup" in mode:
        caps = "its CPU time, memory and number of processes capped for each process and for the run as a whole"
    else:
        caps = ("its CPU time, memory and number of processes capped for each process only (no per-run cgroup "
                "could be made here, so a run's processes together could use more)")
    return f"each student's code ran sandboxed (bubblewrap: no network, only the files it needs) {who}, with {caps}"


def summarize(results: dict[str, GradeResult], failures: dict[str, str], seconds: float,
              refused: Iterable[Collected] = ()) -> list[str]:
    """Lines: what was graded and how long it took; every student not graded and why (the
    next run grades them again); refused submissions; notebooks that ran out of time, filled
    the space their kernel may write to or whose kernel died; the isolation limits the runs reported; then the
    grade table.

    results: {student_id: GradeResult}; failures: {student_id: why}; refused: collect's
    Collected entries with an error."""
    lines = [f"graded {len(results)} submissions in {seconds:.0f} s"
             + (f" ({seconds / len(results):.1f} s per submission with all workers)" if results else "")]
    for sid, why in sorted(failures.items()):
        lines.append(f"  NOT GRADED {sid}: {why} (the next run grades them again)")
    for entry in refused:
        lines.append(f"  REFUSED {printable(entry.student_id or entry.source.name)} ({printable(entry.source.name)}): "
                     f"{printable(entry.error)}")
    for sid, result in sorted(results.items()):
        if result.timed_out:
            lines.append(f"  {sid}: ran out of time: {', '.join(result.timed_out)}")
        if result.out_of_space:
            lines.append(f"  {sid}: filled the space its kernel may write to: {', '.join(result.out_of_space)}")
        if result.kernel_died:
            lines.append(f"  {sid}: its kernel died (its own doing): {', '.join(result.kernel_died)}")
        if not result.nbgrader_ok:
            lines.append(f"  {sid}: some notebooks could not be run (see the feedback)")
    modes = sorted({result.isolation for result in results.values() if result.isolation})
    lines += [f"  {how_isolated(mode)}" for mode in modes]
    if results:
        top = max(scores(result)[1] for result in results.values())
        lines.append(f"  scores are out of {top:g} points; extra credit adds to them (grades.csv, report.html)")
    lines.append("")
    lines.append(f"{'student':<20} {'score':>8} {'of':>6} {'extra':>6} {'by hand':>8}  functions passed")
    for sid, result in sorted(results.items()):
        score, max_score, parts = scores(result)
        lines.append(f"{sid:<20} {score:8.1f} {max_score:6.0f} {parts.extra_credit:6.1f} "
                     f"{str(parts.manual_pending) + ' wait' if parts.manual_pending else '-':>8}  "
                     f"{parts.function_cases_passed} of {parts.function_cases}")
    for sid in sorted(failures):
        lines.append(f"{sid:<20} {'not graded':>15}")
    return lines
