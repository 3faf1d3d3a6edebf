"""A C compiler for the tests' throwaway builds of the fast layers (a student release's, a
self-study workspace's, Gradescope's setup.sh, the hub's `make hub-build`): the machine's cc with
setup.py's -O3 (and Python's -O2/-O3) turned into -O0, 3 s instead of 22 s of CPU per build.
What those builds prove (Cython, the compile, the link, an importable extension) does not depend
on the optimisation; none of them runs the fast layers for long, and the suite's own build
(make install-dev) keeps -O3."""
import os
from pathlib import Path

SCRIPT = """#!/bin/sh
# cc at -O0 (tests/quick_cc.py)
for arg do shift; case $arg in -O2|-O3) arg=-O0;; esac; set -- "$@" "$arg"; done
exec cc "$@"
"""


def quick_cc_env(folder):
    """{"CC": path} of the compiler, written into folder (created; readable and runnable by all,
    for builds run as another user)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "quick-cc"
    path.write_text(SCRIPT)
    os.chmod(path, 0o755)
    return {"CC": str(path)}
