"""autograder.notebooks.inert on notebooks: honest answers stay as written, markup that could run does not.

The browser side (formgrader, JupyterLab, feedback on a graded hostile submission) is
tests/attacks/test_pages_staff_open.py; these pin the rules on single cells, fast."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.notebooks.inert import NOTE, make_inert, make_notebook_inert, markdown_is_inert

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

HONEST = [
    "Because its slope is 1 there and 0 elsewhere.",
    "For $x<0$ the gradient is $0$; `np.maximum(x, 0)` and $$\\frac{\\partial L}{\\partial x}$$",
    "| a | b |\n|:--|--:|\n| 1 | 2 |",
    "- [x] checked the shapes\n- [ ] tuned the rate",
    "# Answer\n\nSee [the notes](https://cs231n.github.io/) or [below](#answer).",
    "```python\nx = np.maximum(x, 0)  # <b>not markup</b>\n```",
    "> a quote with **bold** and _emphasis_ and a line  \nbreak",
]
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "text <b onmouseover=alert(1)>hover</b>",
    "<svg onload=alert(1)></svg>",
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "[proof](javascript:alert(1))",
    "[proof](JaVaScRiPt:alert(1))",
    "[proof](<javascript:alert(1)>)",
    "<javascript:alert(1)>",
    "[proof][ref]\n\n[ref]: javascript:alert(1)",
    "[proof](data:text/html,<script>alert(1)</script>)",
    '<meta http-equiv="refresh" content="0;url=https://example.org">',
    "<style>body { background: url(https://example.org/x) }</style>",
    '<span style="background-image: url(https://example.org/x)">x</span>',
    "![beacon](https://example.org/pixel.png)",
    "```mermaid\n<img src=x onerror=alert(1)>\n```",
    "<div title='",  # an open tag that would swallow the page after it
    "<!-- hide what follows",
]


@pytest.mark.parametrize("source", HONEST)
def test_honest_markdown_is_kept_as_written(source):
    assert markdown_is_inert(source)
    nb = new_notebook(cells=[new_markdown_cell(source)])
    assert make_notebook_inert(nb) == [] and nb.cells[0].source == source


@pytest.mark.parametrize("source", HOSTILE)
def test_markup_that_could_run_is_shown_as_its_source(source):
    assert not markdown_is_inert(source)
    nb = new_notebook(cells=[new_markdown_cell(f"My answer.\n\n{source}")])
    assert make_notebook_inert(nb) == ["cell 0: markdown shown as source"]
    shown = nb.cells[0].source
    assert shown.startswith(NOTE) and f"My answer.\n\n{source}" in shown  # nothing of the text lost
    assert markdown_is_inert(shown)  # and the rewritten cell is itself inert


def test_a_fence_in_the_answer_cannot_close_the_source_block():
    source = "```\n````\n<img src=x onerror=alert(1)>"
    nb = new_notebook(cells=[new_markdown_cell(source)])
    make_notebook_inert(nb)
    assert markdown_is_inert(nb.cells[0].source) and source in nb.cells[0].source


def test_an_embedded_raster_image_is_kept_and_an_svg_attachment_is_not():
    nb = new_notebook(cells=[new_markdown_cell("![drawing](attachment:d.png)")])
    nb.cells[0].attachments = {"d.png": {"image/png": PNG, "image/svg+xml": "<svg onload=alert(1)/>"}}
    make_notebook_inert(nb)
    assert nb.cells[0].attachments == {"d.png": {"image/png": PNG}}
    assert nb.cells[0].source == "![drawing](attachment:d.png)"


def test_outputs_keep_text_images_and_clean_html_only():
    outputs = [
        new_output("display_data", data={"text/html": "<script>alert(1)</script><table><tr><td>1</td></tr></table>",
                                         "application/javascript": "alert(1)", "text/plain": "table"}),
        new_output("display_data", data={"image/svg+xml": "<svg onload=alert(1)/>"}),
        new_output("display_data", data={"text/markdown": "<img src=x onerror=alert(1)>", "text/plain": "md"}),
        new_output("display_data", data={"image/png": PNG, "text/plain": "pixel"},
                   metadata={"image/png": {"width": "1 onload=alert(1)", "height": 4}}),
        new_output("stream", name="stdout", text="<b>printed</b>"),
    ]
    nb = new_notebook(cells=[new_code_cell("x", outputs=outputs, execution_count=3)])
    changes = make_notebook_inert(nb)
    assert changes == ["cell 0: application/javascript output dropped", "cell 0: image/svg+xml output dropped",
                       "cell 0: text/markdown output dropped", "cell 0: an output cut to what renders inert"]
    html, svg, md, png, stream = nb.cells[0].outputs
    assert html.data["text/html"] == "&lt;script&gt;alert(1)&lt;/script&gt;<table><tbody><tr><td>1</td></tr></tbody></table>"
    assert set(html.data) == {"text/html", "text/plain"}
    assert "removed" in svg.data["text/plain"]  # the cell still shows it had an output
    assert md.data == {"text/plain": "md"}
    assert png.data["image/png"] == PNG and png.metadata == {"image/png": {"height": 4}}
    assert stream.text == "<b>printed</b>"  # text outputs are escaped by every renderer
    assert nb.cells[0].execution_count == 3


def test_a_grade_id_that_is_not_an_id_loses_its_nbgrader_metadata():
    cell = new_markdown_cell("answer", metadata={"nbgrader": {"grade_id": 'x"><img src=x onerror=alert(1)>',
                                                              "solution": True, "grade": True, "points": 1}})
    good = new_markdown_cell("answer", metadata={"nbgrader": {"grade_id": "why_relu", "solution": True}})
    nb = new_notebook(cells=[cell, good])
    make_notebook_inert(nb)
    assert "nbgrader" not in nb.cells[0].metadata and nb.cells[1].metadata["nbgrader"]["grade_id"] == "why_relu"


def test_make_inert_rewrites_only_what_changes_and_is_stable(tmp_path):
    honest, hostile = tmp_path / "Honest.ipynb", tmp_path / "sub" / "Hostile.ipynb"
    hostile.parent.mkdir()
    nbformat.write(new_notebook(cells=[new_markdown_cell(HONEST[1])]), honest)
    nbformat.write(new_notebook(cells=[new_markdown_cell(HOSTILE[0])]), hostile)
    before = honest.stat().st_mtime_ns
    assert list(make_inert(tmp_path)) == [str(hostile)]
    assert honest.stat().st_mtime_ns == before
    assert make_inert(tmp_path) == {}  # an inert notebook stays as it is


def test_a_notebook_with_nothing_to_change_is_not_rewritten(tmp_path):
    outputs = [new_output("stream", name="stdout", text="loss 2.3\n"), new_output("error", ename="E", evalue="<b>",
                                                                                  traceback=["<i>"]),
               new_output("execute_result", data={"text/plain": "3", "image/png": PNG}, execution_count=1,
                          metadata={"image/png": {"width": 40}})]
    path = tmp_path / "Plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x", outputs=outputs, execution_count=1)]), path)
    before = path.stat().st_mtime_ns
    assert make_inert(tmp_path) == {} and path.stat().st_mtime_ns == before


@pytest.mark.parametrize("config", ["nbgrader_config.py", "platforms/jupyterhub/nbgrader_config.py"])
def test_formgrader_sanitises_outputs_on_the_local_server_and_the_hub(config):
    """The second layer (docs/grading.md, "Pages staff open"): formgrader's HTMLExporter reads
    these files; tests/attacks/test_pages_staff_open.py shows in the browser what it stops and what it does not."""
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.config import ROOT

    path = ROOT / config
    loaded = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    assert loaded.HTMLExporter.sanitize_html is True
