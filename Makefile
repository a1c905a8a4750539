# The README's commands. `make demo` sets up and generates a video; `make test` sets up and tests.
# On this project's CPU machines the constraints file pins the local CPU build of torch;
# on a GPU machine run `pip install -e .` yourself to get your CUDA torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints-cpu.txt
STAMP := $(VENV)/.installed
TEST_VENV ?= .venv-test
TEST_PY := $(TEST_VENV)/bin/python
TEST_STAMP := $(TEST_VENV)/.installed

.PHONY: setup demo test test-slow clean system-deps

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

# The tests also exercise quantized loading (the `quant` extra). They get their own environment:
# with torchao installed, torch and diffusers print import-time warnings on every run, which the
# demo's environment stays free of.
$(TEST_STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev,quant]"
	touch $(TEST_STAMP)

setup: $(STAMP)

# The job-store tests start a throwaway PostgreSQL cluster (Debian's server binaries) and the UI tests drive
# Debian's chromium; as root they are installed when missing, otherwise those tests are skipped with a note.
SYSTEM_PACKAGES := $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
                   $(if $(shell command -v chromium),,chromium)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(strip $(SYSTEM_PACKAGES)); \
	  else echo "note: not installed: $(strip $(SYSTEM_PACKAGES)); their tests will be skipped"; fi; fi

demo: setup
	$(VENV)/bin/i2v generate src/i2v/assets/sample.png --prompt "the red circle moves to the right" \
		--seed 0 --timings -o outputs/demo.mp4
	$(VENV)/bin/i2v generate src/i2v/assets/astronaut.jpg --model i2v-photo --prompt "the camera slowly pushes in" \
		--seed 0 --timings -o outputs/demo-photo.mp4

test: $(TEST_STAMP) system-deps
	$(TEST_PY) -m pytest -q

# pytest exits 5 when no test is marked slow
test-slow: $(TEST_STAMP)
	$(TEST_PY) -m pytest -q -m slow || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) $(TEST_VENV) outputs

# Photographs for training the embedded model (docs/data-card.md): the allowed Debian wallpaper
# packages and the sample photos of scikit-image / scikit-learn, into $(PHOTOS_DIR). Offline.
PHOTOS_DIR ?= data/photos
TRAIN_STAMP := $(VENV)/.installed-train
.PHONY: photos

$(TRAIN_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[train]"
	touch $(TRAIN_STAMP)

photos: $(TRAIN_STAMP)
	$(PY) -m i2v.world.photos.sources --install --out $(PHOTOS_DIR)
