"""Without the compiled extension: `import cs231n.fast_layers` says how to build it, and the
rest of the package (the naive layers, the sandwich layers) keeps working.

The failure is simulated for real: a copy of the package without the compiled module, imported
in a fresh interpreter, so the import system falls through to the stand-in fast_layers.py.
"""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import cs231n

PACKAGE = Path(cs231n.__file__).resolve().parent
STAND_IN = PACKAGE / "fast_layers.py"


def _assert_teaches_the_build(message):
    assert "cs231n.fast_layers is not built" in message
    assert "make install" in message and "pip install --no-build-isolation -e ." in message
    assert "compiler" in message or "Build Tools" in message or "xcode-select" in message


def test_stand_in_raises_an_import_error_that_names_the_build_command():
    spec = importlib.util.spec_from_file_location("cs231n.fast_layers", STAND_IN)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except ImportError as error:
        _assert_teaches_the_build(str(error))
        assert error.name == "cs231n.fast_layers"
    else:
        raise AssertionError("fast_layers.py must raise ImportError")


def test_package_without_the_extension_falls_back_to_naive_layers(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "cs231n",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    script = (
        "import cs231n, cs231n.layers, cs231n.layer_utils as lu\n"
        f"assert cs231n.__file__.startswith({str(tmp_path)!r}), cs231n.__file__\n"
        "assert lu.FAST_LAYERS is False and lu.conv_forward is cs231n.layers.conv_forward_naive\n"
        "import cs231n.fast_layers\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), result.stderr
    _assert_teaches_the_build(last)
