# Explore — the two commands of the README, and a few more for developers.
#   make serve   create .venv if missing, then serve every lab on http://127.0.0.1:5006
#   make test    create .venv if missing, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 5006
STAMP  := $(VENV)/.installed

.PHONY: serve test test-all test-browser bench env clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,notebook,diffusers]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/explore serve --address 127.0.0.1 --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest

# slow studies too (not part of `make test`)
test-all: $(STAMP)
	$(PY) -m pytest -m ''

# the real-browser tests (headless Chromium; screenshots in test-artifacts/)
test-browser: $(STAMP)
	$(PY) -m pytest -m '' tests/browser

bench: $(STAMP)
	$(PY) benchmarks/nlse_vs_peer.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
