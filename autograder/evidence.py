"""What a student's notebooks earned, from grader-side evidence: the autograded notebooks' grade
cells, checked against the judge's function results; and the messages that may reach a student
(never one that quotes a hidden test)."""
import re
from pathlib import Path


def _first_error_line(cell):
    """'Ename: evalue' of a cell's error output (no traceback: it would show test source)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            value = str(out.get("evalue", "")).strip()
            return f"{out.get('ename', 'Error')}: {value[:400]}" if value else out.get("ename", "Error")
    return ""


def read_notebook_grades(course_root, db_url, assignment_id, student_id):
    """[{notebook, grades: [{name, auto_score, max_score, needs_manual_grade, message}]}]."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    notebooks = []
    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return notebooks
        for nb in submission.notebooks:
            path = Path(course_root) / "autograded" / student_id / assignment_id / f"{nb.name}.ipynb"
            cells = {}
            if path.exists():
                for cell in nbformat.read(path, as_version=4).cells:
                    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    if grade_id:
                        cells[grade_id] = cell
            grades = [{"name": g.name, "auto_score": g.auto_score, "max_score": g.max_score,
                       "needs_manual_grade": bool(g.needs_manual_grade),
                       "message": _first_error_line(cells.get(g.name, {}))} for g in nb.grades]
            notebooks.append({"notebook": nb.name, "grades": sorted(grades, key=lambda g: g["name"])})
    return notebooks


def _test_cell_sources(source_dir):
    """{notebook: {grade_id: source}} of the autograded test cells of the source notebooks."""
    import nbformat

    found = {}
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        cells = {}
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution") and meta.get("grade_id"):
                cells[meta["grade_id"]] = cell.source
        found[path.stem] = cells
    return found


def _hidden_test_lines(source_dir):
    """The lines of the source notebooks' hidden tests (stripped, 8 characters or more)."""
    lines = set()
    for cells in _test_cell_sources(source_dir).values():
        for source in cells.values():
            inside = False
            for line in source.splitlines():
                if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                    inside = "BEGIN" in line
                elif inside and len(line.strip()) >= 8:
                    lines.add(line.strip())
    return lines


def withhold_hidden_tests(notebooks, source_dir, window=24):
    """Replace every grade message that quotes a hidden test (any `window` characters of one of
    its lines, or a marker) by its error name: the student's code runs in the kernel next to the
    hidden tests and could raise an error that quotes them, and messages reach the feedback."""
    pieces = set()
    for line in _hidden_test_lines(source_dir):
        pieces.update(line[i:i + window] for i in range(max(1, len(line) - window + 1)))
    for nb in notebooks:
        for g in nb["grades"]:
            message = g.get("message") or ""
            if "HIDDEN TESTS" in message or any(piece in message for piece in pieces):
                g["message"] = f"{message.split(':', 1)[0][:80]}: (message withheld: it quotes a hidden test)"


def confirm_with_functions(notebooks, functions, source_dir, tasks=None):
    """Keep a notebook test cell's points only if every student task named in its source (the
    source notebook's, hidden tests included; whole words) passed all its function-level judge
    cases: the kernel runs student code next to the tests and can patch its way through them,
    the judge cannot be fooled that way. Adjusts `notebooks` in place (auto_score 0, a message,
    the earlier score kept as score_before_check); returns the notebook score before the check."""
    from cs231n.tasks import TASKS

    tasks = TASKS if tasks is None else tasks
    cases = {}
    for f in functions:
        cases.setdefault(f["task"], []).append(bool(f["passed"]))
    failed = {t for t in tasks if not cases.get(t) or not all(cases[t])}
    words = {t: re.compile(rf"(?<![A-Za-z0-9_]){re.escape(t)}(?![A-Za-z0-9_])") for t in tasks}
    sources = _test_cell_sources(source_dir)
    before = 0.0
    for nb in notebooks:
        for g in nb["grades"]:
            before += g["auto_score"] or 0.0
            source = sources.get(nb["notebook"], {}).get(g["name"])
            if source is None:
                continue
            unconfirmed = [t for t in tasks if t in failed and words[t].search(source)]
            if unconfirmed and (g["auto_score"] or 0) > 0:
                g["score_before_check"] = g["auto_score"]
                g["auto_score"] = 0.0
                g["message"] = f"not confirmed by the function tests: {', '.join(unconfirmed)} failed"
    return before
