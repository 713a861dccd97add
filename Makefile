# Two entry points, each creating or reusing .venv and installing everything (torch included).
#   make study – set up, then the main job: `convzoo study` on the embedded digits data (report in ./study)
#   make test  – set up, then lint and the default test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch; pyproject.toml accepts any torch>=2.4
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup study run test test-slow lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,deploy]"
	touch $(STAMP)

setup: $(STAMP)

study: $(STAMP)
	$(BIN)/convzoo study --out study

run: study

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

test: lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build src/*.egg-info
