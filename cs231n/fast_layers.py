"""Stand-in for the compiled fast layers: found only when the Cython extension is not built.

The fast layers live in fast_layers.pyx, compiled to an extension module of the same name
(fast_layers.cpython-*.so or .pyd) by `pip install -e .`. In one folder CPython's import system
tries extension modules before .py files, so when the extension exists this file is never
imported; when it is missing, importing cs231n.fast_layers lands here and raises an ImportError
that says how to build it. Everything else in cs231n (the naive layers included) works without it.
"""
import sys

_COMPILER = {
    "darwin": "the Xcode command line tools (xcode-select --install)",
    "win32": "Microsoft C++ Build Tools (Visual Studio, 'Desktop development with C++')",
}.get(sys.platform, "a C compiler and the Python headers (Debian/Ubuntu: "
                    "sudo apt-get install build-essential python3-dev)")

MESSAGE = (
    "cs231n.fast_layers is not built: the fast layers are a Cython extension that must be "
    "compiled once. From the assignment's top folder run `make install` "
    "(or `pip install --no-build-isolation -e .`). This needs Cython (pip install Cython) and "
    f"{_COMPILER}. Until then the naive layers in cs231n.layers work as before."
)

raise ImportError(MESSAGE, name=__name__)
