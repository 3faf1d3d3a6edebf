"""What a run's kernel zygote imports before it forks the run's kernels: ALWAYS, and of the modules
in WHEN_USED those whose package the assignment uses, as its source notebooks and the course
package's modules they import say. docs/isolation.md, "Notebook kernels"."""
from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

ALWAYS = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "IPython")
# Each module a zygote may import before it forks (none of them starts a thread on import), with
# the package whose use earns it; matplotlib's brings the kernel's inline backend
WHEN_USED = {"numpy": "numpy", "scipy.signal": "scipy", "scipy.special": "scipy",
             "matplotlib": "matplotlib", "matplotlib.pyplot": "matplotlib",
             "matplotlib_inline.backend_inline": "matplotlib", "sklearn.datasets": "sklearn",
             "skimage.transform": "skimage", "skimage.data": "skimage"}
EVERY_MODULE = ALWAYS + tuple(WHEN_USED)  # a run told nothing of its assignment's imports


def modules_to_preload(notebooks: Iterable[Path], package: Path) -> tuple[str, ...]:
    """ALWAYS, then the modules of WHEN_USED whose package the assignment uses (imported_modules
    of its source notebooks and the course package's folder)."""
    used = {name.partition(".")[0] for name in imported_modules(notebooks, package)}
    return ALWAYS + tuple(module for module, earned_by in WHEN_USED.items() if earned_by in used)


def imported_modules(notebooks: Iterable[Path], package: Path) -> set[str]:
    """The modules the notebooks' code cells import, and, in the course package (its folder),
    what importing those modules imports, and what their functions may import (a module the
    notebooks name: its functions are what they call). A cell that is not Python (a cell magic, a
    syntax error) counts for nothing."""
    found: set[str] = set()
    called: set[str] = set()  # modules whose functions' imports count too
    todo = [(name, True) for path in notebooks for cell in _code_cells(path) for name, _ in _imports(cell, "")]
    while todo:
        name, calls = todo.pop()
        if name in found and (name in called or not calls):
            continue
        found.add(name)
        if calls:
            called.add(name)
        source = _package_file(name, package)
        if source is not None:
            module = name if source.name != "__init__.py" else name + ".__init__"
            todo.extend((imported, False) for imported, eager in _imports(source.read_text(errors="replace"), module)
                        if eager or calls)
    return found


def _code_cells(path: Path) -> Iterator[str]:
    """The code cells of the notebook at path, IPython's line magics and shell escapes left out."""
    cells = json.loads(path.read_text(errors="replace")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            lines = (source if isinstance(source, str) else "".join(source)).splitlines()
            yield "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _imports(code: str, module: str) -> Iterator[tuple[str, bool]]:
    """(name, eager) of every absolute module name code imports (for `from a.b import c`: a, a.b,
    and a.b.c, which may be a module); eager: run on import, not inside a function. module: code's
    own dotted name, against which relative imports resolve ("" for a notebook)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return
    yield from _walk(tree, module, True)


def _walk(node: ast.AST, module: str, eager: bool) -> Iterator[tuple[str, bool]]:
    for child in ast.iter_child_nodes(node):
        names: list[str] = []
        if isinstance(child, ast.Import):
            names = [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = _absolute(child.module or "", child.level, module)
            names = [f"{base}.{alias.name}" for alias in child.names if alias.name != "*"] or [base] if base else []
        for name in names:
            parts = name.split(".")
            yield from ((".".join(parts[:i]), eager) for i in range(1, len(parts) + 1))
        yield from _walk(child, module, eager and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def _absolute(name: str, level: int, module: str) -> str:
    """The absolute name of `from <level dots><name> import ...` in module ("" if it points
    above the top package)."""
    if level == 0:
        return name
    parts = module.split(".")[:-level]
    return ".".join([*parts, name] if name else parts) if parts else ""


def _package_file(name: str, package: Path) -> Path | None:
    """The file of module `name` inside the course package (package.name is its top-level name),
    or None: a module of another package, of the standard library, or not a module at all."""
    parts = name.split(".")
    if parts[0] != package.name:
        return None
    folder = package.joinpath(*parts[1:])
    for candidate in (folder / "__init__.py", folder.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None
