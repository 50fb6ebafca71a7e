# minigraph: `make demo` runs the generator demo, `make test` runs the test suite.
# Both create .venv and install Graphviz's `dot` when missing. `make demo` installs only the package and
# the demo's extra; `make test`, `make bench`, `make lint` and `make typecheck` install every extra and
# PyTorch (the optional test and benchmark oracle).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# torch is an optional oracle for tests and benchmarks; this exact version is the CPU build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup test demo bench lint typecheck acceptance dot clean

setup: $(STAMP) dot

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[examples]"
	$(PY) -m pip check  # the extras' protobuf needs (tensorboardX, tensorboard, onnx) must resolve together
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install --quiet -e ".[test,examples,bench,dev,distributed]"
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" || echo "note: $(TORCH_SPEC) could not be installed; PyTorch oracle tests and benchmark columns will be skipped"
	$(PY) -m pip check
	touch $(STAMP)

# Graphviz's `dot` renders the graph pictures; install it from the system package manager when missing.
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || true; \
	  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq graphviz >/dev/null) || true; \
	  elif command -v brew >/dev/null 2>&1; then brew install graphviz || true; fi; }
	@command -v dot >/dev/null 2>&1 && dot -V || echo "warning: Graphviz 'dot' is missing (apt-get install graphviz / brew install graphviz / conda install graphviz); pictures fall back to .dot files and render tests fail"

test: setup
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

demo: $(DEMO_STAMP) dot
	$(PY) examples/gan_digits.py --quick --out out/ --tensorboard out/tb
	@echo "Watch the run (both losses, D(real) and D(fake), the samples, the generator's graph):"
	@echo "    tensorboard --logdir out/tb"
	@command -v tensorboard >/dev/null 2>&1 || [ -x $(VENV)/bin/tensorboard ] || \
	  echo "(tensorboard is not installed: pip install tensorboard, or $(PY) -m pip install tensorboard and run $(VENV)/bin/tensorboard --logdir out/tb)"

bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m benchmarks

lint: setup
	$(PY) -m ruff check minigraph tests examples benchmarks

typecheck: setup
	$(PY) -m mypy

acceptance: setup
	../shared/acceptance/run

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .hypothesis
