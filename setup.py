"""Builds the cs231n package and its Cython fast layers (cs231n/fast_layers.pyx).

`pip install -e .` (what `make install` runs) compiles the extension in place. OpenMP is used
when the compiler accepts it (gcc, clang with libomp) and silently left out otherwise (Apple
clang), so the build never fails for want of it; the kernels then run on one core.
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _compiler_accepts(compiler, flags):
    """True if the compiler builds and links a tiny OpenMP program with `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp_probe.c"
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, str(Path(tmp) / "omp_probe"), extra_postargs=flags)
        except Exception:  # any compile or link failure means "no OpenMP here"
            return False
    return True


class BuildExtWithOptionalOpenMP(build_ext):
    """build_ext that adds OpenMP flags only where the compiler supports them."""

    def build_extensions(self):
        if os.environ.get("CS231N_NO_OPENMP"):
            flags = None
        elif self.compiler.compiler_type == "msvc":
            flags = ["/openmp"]
        else:
            flags = ["-fopenmp"] if _compiler_accepts(self.compiler, ["-fopenmp"]) else None
        if flags is None:
            print("cs231n: building the fast layers without OpenMP (one core)", file=sys.stderr)
        for ext in self.extensions:
            if flags:
                ext.extra_compile_args += flags
                ext.extra_link_args += [] if self.compiler.compiler_type == "msvc" else flags
        super().build_extensions()


def _extensions():
    pyx = HERE / "cs231n" / "fast_layers.pyx"
    if not pyx.exists():
        return []
    from Cython.Build import cythonize

    ext = Extension(
        "cs231n.fast_layers",
        [str(pyx.relative_to(HERE))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if os.name != "nt" else ["/O2"],
        extra_link_args=[],
    )
    return cythonize([ext], language_level=3, compiler_directives={"embedsignature": True})


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOptionalOpenMP})
