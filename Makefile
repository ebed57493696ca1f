# homevitals: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
DEMO_STAMP := $(VENV)/.demo-$(HASH)

.PHONY: test soak demo lint types pytest system-deps demo-deps bench clean

test: $(STAMP) system-deps lint types pytest

system-deps:
	@bash scripts/install-system-deps.sh test

# The demo needs only the broker, the zone data and the runtime dependencies (no test extras,
# no PostgreSQL, VictoriaMetrics or Chromium); a venv that `make test` made already serves.
demo-deps:
	@bash scripts/install-system-deps.sh demo

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check devices careteam bumble_bleak gateway ingest alerts firmware_sims homevitals api

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Long runs that `make test` skips (tests marked `slow`): fuzzing, soaks.
soak: $(STAMP) system-deps
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

$(DEMO_STAMP): pyproject.toml | demo-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ ! -e $(STAMP) ]; then \
		$(BIN)/pip install --quiet --upgrade pip && $(BIN)/pip install --quiet -e . ; fi
	rm -f $(VENV)/.demo-*
	touch $@

demo: $(DEMO_STAMP) demo-deps
	$(BIN)/homevitals demo $(DEMO_ARGS)

# The quick set (about a minute per module); `python -m bench` alone runs the full measurements.
bench: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
