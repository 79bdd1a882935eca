# whatwhere: `make demo` and `make test` each do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_PIN ?= torch==2.13.0
DEMO_DIR ?= demo

.PHONY: install mnist demo lint test test-all browser bench clean help

help:
	@echo "make demo   - set up .venv, fetch MNIST, run the quick demo (figures + tables in $(DEMO_DIR)/)"
	@echo "make lint   - ruff (lint + format check) and mypy on src/"
	@echo "make test   - set up .venv, fetch MNIST, lint, check the import layers, run the test suite"
	@echo "make test-all - the same with the slow tests (installs Debian chromium if missing, as root: the report opened headless)"
	@echo "make bench  - run the speed benchmarks"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# Prefer the pinned CPU wheel when it is available (fast, small); otherwise let pip resolve torch>=2.3.
	$(PIP) install -q "$(TORCH_PIN)" || echo "note: $(TORCH_PIN) not available here; pip will resolve torch>=2.3"
	$(PIP) install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

mnist: install
	$(VENV)/bin/whatwhere data fetch

demo: mnist
	$(VENV)/bin/whatwhere demo --out $(DEMO_DIR)

# ruff and mypy read their settings from pyproject.toml ([tool.ruff], [tool.mypy])
lint: install
	$(VENV)/bin/ruff check src
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy

test: lint mnist
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow"

# the slow tests include the report opened in headless Chromium: install Debian's package where we can (root, apt),
# and make a missing browser a failure rather than a skip
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium); } \
	  || { echo "make test-all needs chromium: apt-get install -y chromium (as root)" >&2; exit 1; }

test-all: lint mnist browser
	$(VENV)/bin/lint-imports
	WHATWHERE_REQUIRE_BROWSER=1 $(PY) -m pytest -q

bench: mnist
	$(PY) benchmarks/bench_displays.py
	$(PY) benchmarks/bench_retina.py
	$(PY) benchmarks/bench_busy.py
	$(PY) benchmarks/bench_where_step.py
	$(PY) benchmarks/bench_accuracy_map.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache .mypy_cache build
