"""The lecture map of docs/self-study.md names real notebooks, real section headings and real
tasks, and each task it lists is one a check cell of that section names (metadata.cs231n.tasks)."""
import json
import re
from pathlib import Path

from cs231n.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "self-study.md"
NOTEBOOKS = ROOT / "assignments" / "a2"
PARTS = ["LeNet-5", "AlexNet", "ZFNet", "VGGNet", "GoogLeNet", "ResNet", "the convolution layer", "pooling",
         "the training loop: mini-batch SGD", "dropout"]


def map_rows():
    """[(lecture part, notebook, section, [tasks])] of the map's table."""
    text = PAGE.read_text(encoding="utf-8").split("## The lecture as a map", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| lecture part")]
    parsed = []
    for row in rows:
        part, notebook, section, tasks, _time = (cell.strip() for cell in row.strip("|").split("|"))
        parsed.append((part, notebook, section, re.findall(r"`(\w+)`", tasks) if tasks != "—" else []))
    return parsed


def sections(notebook):
    """{heading text: set of tasks the cells under it (its subsections included) name}."""
    nb = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    found, open_headings = {}, []  # open_headings: [(level, text)] enclosing the current cell
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for line in source.splitlines():
                heading = re.match(r"^(#+)\s+(.*\S)", line)
                if heading:
                    level = len(heading.group(1))
                    open_headings = [(lv, t) for lv, t in open_headings if lv < level] + [(level, heading.group(2))]
                    found.setdefault(heading.group(2), set())
        for _, text in open_headings:
            found[text] |= set(cell.get("metadata", {}).get("cs231n", {}).get("tasks", []))
    return found


def test_the_map_lists_the_lectures_parts_in_order():
    parts = [part for part, *_ in map_rows() if part]
    positions = [next(i for i, p in enumerate(parts) if p.startswith(name)) for name in PARTS[:6]]
    assert positions == sorted(positions), parts  # the case studies in the lecture's order
    for name in PARTS:
        assert any(p.startswith(name) for p in parts), name
    assert parts.index("the convolution layer") < parts.index("pooling") < parts.index("LeNet-5")


def test_every_row_names_a_real_notebook_section_and_tasks_that_section_checks():
    rows = map_rows()
    assert len(rows) >= 30
    for part, notebook, section, tasks in rows:
        assert (NOTEBOOKS / f"{notebook}.ipynb").exists(), notebook
        headings = sections(notebook)
        assert section in headings, f"{notebook} has no section {section!r}; it has {sorted(headings)}"
        assert set(tasks) <= set(TASKS), f"not tasks: {set(tasks) - set(TASKS)}"
        assert set(tasks) <= headings[section], (f"{notebook} / {section}: no check cell there names "
                                                 f"{sorted(set(tasks) - headings[section])}")


def test_every_task_is_on_the_map_but_those_the_lecture_does_not_cover():
    mapped = {task for *_, tasks in map_rows() for task in tasks}
    assert set(TASKS) - mapped == {"spatial_groupnorm_forward", "spatial_groupnorm_backward"}
    assert "Spatial group normalisation" in PAGE.read_text()
