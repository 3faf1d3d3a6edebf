"""Points and feedback only from grader-side evidence (issue 12, findings 4 and 5).

Two of the real notebooks (FullyConnectedNets: trained-accuracy cells;
ConvNetArchitectures: the case-study tables) are graded in one batch with the reference, the
untouched starter, and the starter with IPython hooks in its package:
- "leaker": every cell's code (hidden tests included) replaced by an error carrying that source
  zlib-compressed and base85-encoded, plain, rot13 and reversed (finding 4: 269 of 439
  hidden-test lines came out of feedback.html that way);
- "swallow": every cell's errors swallowed and its stderr silenced, so every check "passes";
- "result-first": an execute_result before the cell's code, which nbgrader reads as full credit
  (finding 5: both hooks raised the starter from 0 to 11/168).
The re-checks (autograder/hidden/cases.py RECHECKS) are also run directly, on the reference and
on a starter whose hook fakes the re-check probes inside the judge's worker.
"""
import base64
import codecs
import json
import re
import shutil
import zlib
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder.budget import TimeBudget
from autograder.config import PACKAGE, ROOT, Course
from autograder.results.evidence import FAILED
from autograder.sandbox.bubblewrap import isolation_available

pytestmark = pytest.mark.slow

NOTEBOOKS = ("FullyConnectedNets", "ConvNetArchitectures")
HOOK_PRELUDE = '''

def _hostile_install(transform):  # hostile: runs when a notebook imports this module
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "_hostile_hooked", False):
        shell._hostile_hooked = True
        shell.input_transformers_post.append(transform)
'''
LEAK = HOOK_PRELUDE + '''

def _leak(lines):
    import base64, codecs, zlib
    source = "".join(lines)
    packed = base64.b85encode(zlib.compress(source.encode())).decode()
    message = " | ".join([packed, source, codecs.encode(source, "rot13"), source[::-1]])
    return [f"raise type({('Leak' + packed[:16])!r}, (AssertionError,), {{}})({message!r})\\n"]


_hostile_install(_leak)
'''
SWALLOW = HOOK_PRELUDE + '''

def _swallow(lines):
    body = "".join(lines)
    return ["import io as _io, sys as _sys\\n", "_sys.stderr = _io.StringIO()\\n",
            f"try:\\n    exec(compile({body!r}, '<cell>', 'exec'), globals())\\n"
            "except BaseException:\\n    pass\\n"]


_hostile_install(_swallow)
'''
RESULT_FIRST = HOOK_PRELUDE + '''

def _result_first(lines):
    return ["get_ipython().displayhook('all good')\\n", *lines]


_hostile_install(_result_first)
'''
FAKE_RECHECKS = '''

import sys as _sys  # hostile: inside the judge's worker, answer the re-checks without working
if "probes" in _sys.modules:
    import numpy as _np
    _probes = _sys.modules["probes"]

    def _fake_params(load, inp):
        dims = [int(inp["input_dim"])]
        dims += [int(h) for h in inp["hidden_dims"]] if "hidden_dims" in inp else [int(inp["hidden_dim"])]
        dims += [int(inp["num_classes"])]
        rng = _np.random.default_rng(0)
        out = {}
        for i in range(1, len(dims)):
            out[f"param.W{i}"] = rng.standard_normal((dims[i - 1], dims[i])) * 0.01
            out[f"param.b{i}"] = _np.zeros(dims[i])
        return out

    def _fake_table(load, inp):
        n = len(inp["layers"])
        return {"out_shape": _np.ones((n, 3), dtype=_np.int64),
                "weights_biases": _np.zeros((n, 2), dtype=_np.int64)}

    for _name in ("two_layer_net_train", "fc_net_train"):
        _probes.PROBES[_name] = _fake_params
    _probes.PROBES["network_table"] = _fake_table
'''


def _submission(folder, notebooks, package, appendix=""):
    folder.mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copyfile(Path(notebooks) / f"{name}.ipynb", folder / f"{name}.ipynb")
    shutil.copytree(package, folder / "cs231n", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc"))
    for module in ("layers.py", "arch.py") if appendix else ():  # every notebook imports one
        with open(folder / "cs231n" / module, "a") as f:
            f.write(appendix)


def _grades(result):
    return {f"{nb.notebook}/{g.name}": g for nb in result.notebooks for g in nb.grades}


def _notebook_points(result):
    return sum(g.auto_score or 0 for g in _grades(result).values())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from autograder.intake.collect import collect
    from autograder.results.export import export
    from autograder.results.feedback import write_feedback
    from autograder.grading.grade import grade_all
    from autograder.release.build import build_release

    if not isolation_available():
        pytest.skip("the sandbox's isolation needs root")
    tmp = tmp_path_factory.mktemp("evidence")
    (tmp / "src" / "a2").mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copyfile(ROOT / "assignments" / "a2" / f"{name}.ipynb", tmp / "src" / "a2" / f"{name}.ipynb")
    course = Course(root=tmp / "course", db_url=f"sqlite:///{tmp / 'course' / 'gradebook.db'}",
                    source_root=tmp / "src")
    release = build_release(course)
    subs = tmp / "subs"
    _submission(subs / "reference", course.source, PACKAGE)
    _submission(subs / "starter", release, release / "cs231n")
    for name, hook in (("leaker", LEAK), ("swallow", SWALLOW), ("result-first", RESULT_FIRST)):
        _submission(subs / name, release, release / "cs231n", hook)
    assert not [c.error for c in collect(subs, course) if c.error]
    kw = {"force": True, "progress": False, "budget": TimeBudget(judge_case=10, cell=120)}
    results, failures = grade_all(course, workers=2, **kw)
    assert failures == {}
    write_feedback(course)
    export(course, tmp / "export")
    return SimpleNamespace(course=course, results=results, export=tmp / "export")


# --------------------------------------------------------------------------------------------
# Finding 4: nothing of a hidden test comes out through the feedback or the exports
# --------------------------------------------------------------------------------------------
def _hidden_lines():
    lines = set()
    for name in NOTEBOOKS:
        for cell in nbformat.read(ROOT / "assignments" / "a2" / f"{name}.ipynb", as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if "HIDDEN TESTS" in line:
                    inside = "BEGIN" in line
                elif inside and len(line.strip()) >= 12 and not line.strip().startswith("#"):
                    lines.add(line.strip())
    return lines


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _decodings(text):
    """text as it is, rot13, reversed, and every base85 or base64 run that inflates with zlib."""
    found = [text, codecs.encode(text, "rot13"), text[::-1]]
    for run in re.findall(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{16,}", text):
        for decode in (base64.b85decode, base64.b64decode):
            try:
                found.append(zlib.decompress(decode(run)).decode(errors="replace"))
            except Exception:  # noqa: BLE001  (not this encoding)
                pass
    return found


def _recovered(texts, hidden):
    corpus = "\n".join(d for t in texts for d in _decodings(t))
    return {line for line in hidden if line in corpus}


def test_the_leak_works_in_the_kernel_but_not_through_the_grader(graded):
    hidden = _hidden_lines()
    assert len(hidden) > 20
    # in the autograded notebooks (instructor-only) the hook's errors carry the hidden tests ...
    kernel_texts = []
    for name in NOTEBOOKS:
        nb = nbformat.read(graded.course.step_dir("autograded", "leaker") / f"{name}.ipynb", as_version=4)
        kernel_texts += [json.dumps(out) for cell in nb.cells for out in cell.get("outputs", [])]
    assert len(_recovered([json.loads(t).get("evalue", "") for t in kernel_texts], hidden)) > len(hidden) // 2
    # ... and none of it reaches the student: feedback page, Gradescope results, exported results
    sent = [(graded.course.step_dir("feedback", "leaker") / "feedback.html").read_text()]
    for path in (graded.export / "gradescope" / "leaker" / "results.json", graded.export / "results" / "leaker.json"):
        sent += list(_strings(json.loads(path.read_text())))
    assert _recovered(sent, hidden) == set()
    tests = [g for g in _grades(graded.results["leaker"]).values() if g.score_before_check is not None]
    assert tests and {g.message for g in tests} == {FAILED}


def test_no_notebook_leaves_the_course_folder(graded):
    for folder in (graded.export, graded.course.root / "feedback"):
        assert not list(folder.rglob("*.ipynb")), folder
    for path in (graded.export / "results").glob("*.json"):
        stored = json.loads(path.read_text())
        assert not {"nbgrader_log", "autograded_dir", "scratch"} & set(stored)


# --------------------------------------------------------------------------------------------
# Finding 5: hooks that fool the kernel gain nothing
# --------------------------------------------------------------------------------------------
def test_the_plain_starter_earns_no_notebook_points(graded):
    assert _notebook_points(graded.results["starter"]) == 0


@pytest.mark.parametrize("student", ["swallow", "result-first", "leaker"])
def test_hooked_starters_score_exactly_the_plain_starter(graded, student):
    from autograder.results.store import scores

    hooked, starter = graded.results[student], graded.results["starter"]
    assert scores(hooked) == scores(starter)
    assert _notebook_points(hooked) == 0
    if student != "leaker":  # the hook did fool the kernel: nbgrader gave the cells points
        fooled = [k for k, g in _grades(hooked).items() if g.score_before_check]
        assert len(fooled) >= 10, fooled
        for name in ("FullyConnectedNets/two_layer_net_solver_test", "FullyConnectedNets/best_fc_net_test",
                     "ConvNetArchitectures/alexnet"):
            assert _grades(hooked)[name].score_before_check > 0, name
            assert _grades(hooked)[name].message.startswith("not confirmed:"), name


def test_the_reference_earns_every_cell_every_case_and_every_recheck_in_the_batch(graded):
    """Graded beside the hooked starters, on the same two workers: whatever they did in the
    workers they shared costs the reference nothing (tests/attacks/test_notebook_kernels.py
    compares a student alone and in a hostile batch on the toy)."""
    ref = graded.results["reference"]
    assert ref.functions and all(case.passed and case.points == case.max_points for case in ref.functions)
    auto = [g for g in _grades(ref).values() if g.score_before_check is not None]  # the test cells
    assert auto and all(g.auto_score == g.max_score and g.message == "passed" for g in auto)
    assert all(r.passed for r in ref.rechecks) and len(ref.rechecks) >= 4


# --------------------------------------------------------------------------------------------
# The re-checks themselves, run directly in the judge's worker
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faked(tmp_path_factory):
    from autograder.release.stubs import strip_package

    folder = tmp_path_factory.mktemp("faked")
    strip_package(PACKAGE, folder / "cs231n")
    with open(folder / "cs231n" / "layers.py", "a") as f:
        f.write(SWALLOW + FAKE_RECHECKS)
    return folder


def _recheck_names():
    from autograder.hidden.cases import RECHECKS

    return [r.name for r in RECHECKS]


def test_every_recheck_passes_for_the_reference():
    from autograder.judge import recheck_package

    results = recheck_package(ROOT, _recheck_names())
    assert [r.name for r in results] == sorted(_recheck_names())
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_every_recheck_fails_for_a_starter_that_fakes_the_probes(faked):
    from autograder.hidden.cases import RECHECKS
    from autograder.judge import recheck_package

    results = recheck_package(faked, _recheck_names())
    assert not [r for r in results if r.passed]
    trained = [r.name for r in results if "accuracy" in r.message]
    # every training re-check: the fake answered, and the grader's own evaluation said no
    assert trained == sorted(r.name for r in RECHECKS if r.verdict is not None), results
