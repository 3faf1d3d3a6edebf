"""Make a graded notebook inert before staff open it: nothing a student wrote can run in a page.
Outputs keep text, raster images and allow-listed HTML; markdown that does not render inert is
shown as its source; nbgrader metadata formgrader writes unescaped must be an id.
docs/grading.md, "Pages staff open", says why and how."""
from __future__ import annotations

import base64
import binascii
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import bleach
import nbformat
from nbformat import NotebookNode
from nbformat.corpus.words import generate_corpus_id

NOTE = ("**[autograder]** This answer is shown as its source, not rendered: it holds markup that "
        "could run or load something in the grader's page (raw HTML, a script link or an outside "
        "image). Its text follows as the student wrote it.")
DROPPED = "[autograder] an output of type {} was removed: it could run in the grader's page"
IMAGES = ("image/png", "image/jpeg", "image/gif")
ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
SAFE_HREF = re.compile(r"(https?://|mailto:|#)[^\s\x00-\x1f\x7f]*", re.IGNORECASE)
EMBEDDED = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=]*")
# what nbconvert's markdown renderer itself writes for plain markdown (no raw HTML)
RENDERED_TAGS = {"p", "a", "img", "em", "strong", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
                 "ul", "ol", "li", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
                 "del", "input", "dl", "dt", "dd", "div", "span"}
RENDERED_ATTRS = {"href", "src", "alt", "title", "class", "id", "type", "disabled", "checked", "start"}
ALIGN = re.compile(r"text-align:(left|right|center)")
# HTML outputs: formatting and tables, links out; no class, id or style (nothing that hides or
# restyles the grading page), no images (nothing that loads)
HTML_TAGS = {*bleach.ALLOWED_TAGS, "p", "br", "div", "span", "pre", "sub", "sup", "h1", "h2", "h3", "h4",
             "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "hr", "dl", "dt", "dd"}
HTML_ATTRS = {"a": ["href", "title"], "abbr": ["title"], "acronym": ["title"], "th": ["colspan", "rowspan"],
              "td": ["colspan", "rowspan"]}
_cleaner = bleach.Cleaner(tags=HTML_TAGS, attributes=HTML_ATTRS, protocols={"http", "https", "mailto"},
                          strip=False, strip_comments=True)


def clean_html(html: str | list[str]) -> str:
    """HTML with only allow-listed tags and attributes; any other markup is shown as text."""
    return _cleaner.clean(html if isinstance(html, str) else "".join(html))


class _Tags(HTMLParser):
    """The (tag, attributes) of HTML that nbconvert's renderer wrote (regular, escaped)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _render(source: str, attachments: dict[str, Any], escape: bool) -> str:
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=escape, attachments=attachments)
    return MarkdownWithMath(renderer=renderer).render(source)


def _attribute_ok(tag: str, name: str, value: str | None) -> bool:
    value = value or ""
    if name == "href":
        return bool(SAFE_HREF.fullmatch(value))
    if name == "src":
        return tag == "img" and bool(EMBEDDED.fullmatch(value))
    if name == "style":
        return bool(ALIGN.fullmatch(value.replace(" ", "")))
    return name in RENDERED_ATTRS


def markdown_is_inert(source: str, attachments: dict[str, Any] | None = None) -> bool:
    """True when the markdown renders (as formgrader renders it) without raw HTML, with only
    http(s)/mailto/#anchor links and images embedded as PNG/JPEG/GIF data."""
    try:
        raw = _render(source, attachments or {}, escape=False)
        if raw != _render(source, attachments or {}, escape=True) or '<pre class="mermaid">' in raw:
            return False  # raw HTML passed through, or a mermaid block (written unescaped)
        tags = _Tags(raw).tags
    except Exception:  # noqa: BLE001 - a missing attachment or markdown the renderer cannot take
        return False
    return all(tag in RENDERED_TAGS and all(_attribute_ok(tag, name, value) for name, value in attrs)
               for tag, attrs in tags)


def as_source(source: str) -> str:
    """Markdown that shows `source` verbatim in a fenced code block, after NOTE."""
    runs = [len(run) for run in re.findall(r"`+", source)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{NOTE}\n\n{fence}text\n{source}\n{fence}\n"


def _image_ok(data: object) -> bool:
    if not isinstance(data, str):
        return False
    try:
        base64.b64decode("".join(data.split()), validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def _sizes(metadata: dict[str, Any] | None, kept: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Only numeric width and height of the kept images (nbconvert writes them unquoted)."""
    sizes: dict[str, dict[str, float]] = {}
    for mime in kept:
        entry = (metadata or {}).get(mime)
        if mime in IMAGES and isinstance(entry, dict):
            size = {k: v for k, v in entry.items() if k in ("width", "height")
                    and isinstance(v, (int, float)) and not isinstance(v, bool)}
            if size:
                sizes[mime] = size
    return sizes


def _text(value: object) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _inert_output(out: dict[str, Any]) -> tuple[NotebookNode, list[str]]:
    """The output as it may be stored, and the MIME types dropped from it."""
    kind = out.get("output_type")
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=_text(out.get("text", ""))), []
    if kind == "error":
        return nbformat.v4.new_output("error", ename=_text(out.get("ename", "")), evalue=_text(out.get("evalue", "")),
                                      traceback=[_text(t) for t in out.get("traceback") or []]), []
    if kind not in ("display_data", "execute_result"):
        return nbformat.v4.new_output("stream", name="stdout", text=DROPPED.format(str(kind)[:40])), [str(kind)]
    data: dict[str, Any] = {}
    dropped: list[str] = []
    for mime, value in (out.get("data") or {}).items():
        if mime == "text/plain":
            data[mime] = _text(value)
        elif mime in IMAGES and _image_ok(value):
            data[mime] = value
        elif mime == "text/html":
            data[mime] = clean_html(_text(value))
        else:
            dropped.append(mime)
    if not data:
        data["text/plain"] = DROPPED.format(", ".join(m[:60] for m in dropped))
    fields: dict[str, Any] = {"data": data, "metadata": _sizes(out.get("metadata"), data)}
    if kind == "execute_result":
        count = out.get("execution_count")
        fields["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
    return nbformat.v4.new_output(kind, **fields), dropped


def _inert_attachments(attachments: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {name: {m: v for m, v in bundle.items() if m in IMAGES and _image_ok(v)}
            for name, bundle in (attachments or {}).items() if isinstance(bundle, dict)}


def _inert_metadata(cell: NotebookNode, changes: list[str], where: str) -> None:
    meta = cell.setdefault("metadata", {})
    grading = meta.get("nbgrader")
    if grading is not None and not (isinstance(grading, dict) and ID.fullmatch(str(grading.get("grade_id", "x")))):
        del meta["nbgrader"]  # formgrader writes grade_id into the page as it is
        changes.append(f"{where}: nbgrader metadata with a grade_id that is not an id removed")
    if not isinstance(meta.get("tags", []), list):
        meta["tags"] = []
        changes.append(f"{where}: tags that are not a list removed")
    if "id" in cell and not (isinstance(cell["id"], str) and ID.fullmatch(cell["id"])):
        cell["id"] = generate_corpus_id()
        changes.append(f"{where}: a cell id that is not an id replaced")


def make_notebook_inert(nb: NotebookNode) -> list[str]:
    """Rewrite a NotebookNode in place (see the module); returns a list of what changed."""
    changes: list[str] = []
    if nb.metadata.pop("widgets", None) is not None:
        changes.append("widget state dropped")
    for index, cell in enumerate(nb.cells):
        where = f"cell {index}"
        _inert_metadata(cell, changes, where)
        if cell.cell_type == "code":
            count = cell.get("execution_count")
            if not (count is None or isinstance(count, int) and not isinstance(count, bool)):
                cell.execution_count = None
                changes.append(f"{where}: execution count that is not a number removed")
            for k, out in enumerate(cell.get("outputs", [])):
                inert, dropped = _inert_output(out)
                if inert != out:
                    cell.outputs[k] = inert
                    changes.extend([f"{where}: {mime} output dropped" for mime in dropped]
                                   or [f"{where}: an output cut to what renders inert"])
        elif cell.cell_type == "markdown":
            if "attachments" in cell and _inert_attachments(cell.attachments) != cell.attachments:
                cell.attachments = _inert_attachments(cell.attachments)
                changes.append(f"{where}: attachments other than PNG/JPEG/GIF images dropped")
            source = _text(cell.source)
            if not markdown_is_inert(source, cell.get("attachments")):
                cell.source = as_source(source)
                changes.append(f"{where}: markdown shown as source")
        elif cell.cell_type == "raw" and clean_html(_text(cell.source)) != cell.source:
            cell.source = clean_html(_text(cell.source))
            changes.append(f"{where}: raw cell's HTML cleaned")
    return changes


def make_inert(folder: str | Path) -> dict[str, list[str]]:
    """Rewrite every notebook under folder (an autograded submission) in place; returns
    {notebook path: [what changed]} for those that changed."""
    changed: dict[str, list[str]] = {}
    for path in sorted(Path(folder).rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        changes = make_notebook_inert(nb)
        if changes:  # written only then: a notebook may hold 32 MB of outputs
            nbformat.write(nb, path)
            changed[str(path)] = changes
    return changed
