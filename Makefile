# The README's commands. `make demo` sets up and generates a video; `make test` sets up and tests.
# On this project's CPU machines the constraints file pins the local CPU build of torch;
# on a GPU machine run `pip install -e .` yourself to get your CUDA torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints-cpu.txt
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup demo test test-slow clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

# the tests also exercise quantized loading (the `quant` extra)
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev,quant]"
	touch $(TEST_STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/i2v generate src/i2v/assets/sample.png --prompt "the red circle moves to the right" \
		--seed 0 --timings -o outputs/demo.mp4

test: $(TEST_STAMP)
	$(PY) -m pytest -q

test-slow: $(TEST_STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) outputs
