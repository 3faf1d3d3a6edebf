# One-command set-up: `make demo` and `make test` each create .venv, install, build the Cython
# extension and then do their job. Every target is safe to run again.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# pip prints one warning per package for this machine's unused local indexes; keep logs readable
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP_USER := $(VENV)/.installed-user
STAMP_DEV  := $(VENV)/.installed-dev
EXT_SRC    := $(wildcard cs231n/*.pyx) setup.py pyproject.toml
# test processes: one more than the cores, since a test often waits (kernels, servers, sleeping
# cells); docs/DECISIONS.md has the measurement
JOBS   ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: install install-dev install-torch build demo train-demo test test-fast lab bench bench-grading data clean help browser sandbox proxy \
        self-study grade-mine compare

help:
	@echo "make demo     set up, then run the whole course on a demo class (release, grading, feedback)"
	@echo "make train-demo  train a small ConvNet with the reference code on the offline data"
	@echo "make test     set up and run the whole test suite"
	@echo "make install  create .venv, install requirements.txt, build cs231n + its Cython extension"
	@echo "make install-torch  add PyTorch (CPU build) for the optional PyTorch notebook"
	@echo "make lab      JupyterLab on assignments/a2"
	@echo "make self-study  a workspace of the student release (./workspace, WORKSPACE=...), then JupyterLab (NO_LAB=1: not)"
	@echo "make grade-mine  grade the workspace with the hidden tests, as your own user: feedback.html"
	@echo "make compare TASK=conv_forward_naive  the reference beside yours, once the task's checks pass"
	@echo "make bench    benchmarks (bench/), printing ratios measured in one run"
	@echo "make bench-grading  grading throughput against plain nbgrader"
	@echo "make data     download CIFAR-10 into datasets/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(STAMP_USER): requirements.txt | $(PY)
	$(PIP) install -r requirements.txt
	touch $@

$(STAMP_DEV): requirements-dev.txt requirements.txt | $(PY)
	$(PIP) install -r requirements-dev.txt
	touch $(STAMP_USER) $@

# The editable install compiles cs231n/fast_layers.pyx in place; redone when the .pyx changes.
$(VENV)/.built: $(EXT_SRC) $(STAMP_USER)
	$(PIP) install --no-build-isolation -e .
	touch $@

install: $(STAMP_USER) $(VENV)/.built
# PyTorch's pip beside the extension's compile (they write different files): 15 s less set-up
install-dev: $(STAMP_DEV) browser sandbox proxy
	@$(MAKE) --no-print-directory -j2 $(VENV)/.built $(STAMP_TORCH)

# The optional PyTorch notebook's one dependency, pinned as pyproject.toml's extra `torch` (a test
# keeps the two equal). Where the default wheel is a CUDA build (PyPI on Linux), point pip at
# PyTorch's CPU wheel index: make install-torch TORCH_PIP_ARGS="--index-url <PyTorch's CPU index>".
TORCH       := torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP_TORCH := $(VENV)/.installed-torch
$(STAMP_TORCH): | $(PY)
	$(PIP) install $(TORCH_PIP_ARGS) "$(TORCH)"
	touch $@
install-torch: $(STAMP_TORCH)

# Debian's Chromium for tests/test_browser.py: installed when missing (as root), instant when
# present; prints what to run and exits 0 when it cannot (the test then skips with that reason).
browser:
	@bash .ci/install-browser
# Debian's bubblewrap, the sandbox grading runs student code in (docs/isolation.md): installed
# when missing (as root), instant when present; without it grading refuses to run student code.
sandbox:
	@bash .ci/install-bwrap
build: $(VENV)/.built

# JupyterHub's proxy (configurable-http-proxy) from the npm registry, as package.json and
# package-lock.json pin it, for tests/test_jupyterhub.py; installs nodejs/npm when missing (root).
proxy:
	@bash .ci/install-proxy

# The whole course on a demo class: release, six submissions, grading, feedback, grades.
demo: install-dev
	CS231N_COURSE_DIR=$${CS231N_COURSE_DIR:-course/demo} $(PY) -m autograder demo

# A small ConvNet trained with the reference code on the offline data.
train-demo: install
	$(PY) -m cs231n.demo

# Tests and notebooks run on the offline digits data unless told otherwise (no network in CI);
# pytest runs JOBS processes, each with one BLAS thread; conftest.py hands the longest groups out
# first, and the run ends with its ten slowest tests. mypy checks the types meanwhile: both must pass.
test: install-dev
	@$(PY) -m mypy > $(VENV)/mypy.out 2>&1 & mypy=$$!; \
	CS231N_DATASET=$${CS231N_DATASET:-digits} OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
	  $(PY) -m pytest -n $(JOBS) --dist loadgroup -q --durations=10; tests=$$?; \
	wait $$mypy; typed=$$?; cat $(VENV)/mypy.out; \
	test $$tests = 0 && test $$typed = 0

lab: install
	$(BIN)/jupyter lab --notebook-dir=assignments/a2 $(if $(filter 0,$(shell id -u)),--allow-root,)

# A self-learner's path (docs/self-study.md): the student release in a workspace with its own
# set-up (kept when run again), one's own work graded without root, a passing task's reference.
WORKSPACE ?= workspace
self-study: install
	$(PY) -m autograder self-study "$(WORKSPACE)" $(if $(filter 1,$(NO_LAB)),--no-lab,)

grade-mine: install sandbox
	$(PY) -m autograder grade-mine "$(WORKSPACE)"

compare: install
	$(PY) -m autograder compare "$(WORKSPACE)" $(TASK)

bench: install-dev
	$(PY) -m bench

# Grading throughput: plain serial nbgrader against python -m autograder grade --workers 2
# on 20 submissions of the whole assignment (about 20 minutes).
bench-grading: install-dev
	$(PY) -m bench.grading

data: install
	$(PY) datasets/get_datasets.py

clean:
	rm -rf $(VENV) build *.egg-info cs231n/*.so cs231n/fast_layers.c .hypothesis .pytest_cache
