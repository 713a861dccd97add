# Two entry points, each creating or reusing .venv and installing everything (torch included).
#   make study – set up, then the main job: `convzoo study` on the embedded digits data (report in ./study)
#   make test  – set up, then lint, the default test suite and the ecosystem peers (make test-peer)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch; pyproject.toml accepts any torch>=2.4
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed
# setup.py builds the native extension from this source
NATIVE_SRC := setup.py src/convzoo/csrc/binary_conv.cpp src/convzoo/csrc/sparse_pointwise.cpp src/convzoo/csrc/sparse_conv3d.cpp

.PHONY: setup study run test test-slow test-peer lint clean

$(STAMP): pyproject.toml $(NATIVE_SRC)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)" "setuptools>=64" wheel
	# no build isolation: the native binary convolution compiles against the torch installed above
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[test,deploy]"
	# the optional extras whose tests are marked peer (they skip, saying why, where an install fails);
	# torch-harmonics asks for a newer torch than this CPU build, so it comes without its dependencies
	$(BIN)/python -m pip install --quiet "captum>=0.7" "e3nn>=0.5" "torch-geometric>=2.4" "networkx>=3.0" "scipy>=1.10" "librosa>=0.10" "soundfile>=0.12" \
		|| echo "optional extras (interpret, graph, audio) not installed: their peer tests will skip"
	$(BIN)/python -m pip install --quiet --no-deps "torch-harmonics>=0.7" || echo "torch-harmonics not installed"
	$(BIN)/python -m pip install --quiet "spconv>=2.3" || echo "spconv not installed: the sparse conv3d peer tests will skip"
	# headless Chromium checks the HTML reports as a browser renders them (tests skip without it)
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: the browser checks of the HTML reports will skip"
	touch $(STAMP)

setup: $(STAMP)

study: $(STAMP)
	$(BIN)/convzoo study --out study

run: study

# ruff, then the floors: an import that climbs or closes a loop fails (docs/architecture.md)
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

# with a C++ compiler present, the native binary convolution must have been built (no silent fallback)
NATIVE_REQUIRED := $(shell command -v c++ >/dev/null 2>&1 && echo 1 || echo 0)

# the kernels older or smaller CPUs take: oneDNN held to AVX2, ATen to its portable kernels (docs/known-issues.md)
ISA_RESTRICTED := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=default
ISA_TESTS := tests/test_contracts.py tests/core tests/ops tests/kernels

test: lint
	CONVZOO_REQUIRE_NATIVE=$(NATIVE_REQUIRED) $(BIN)/python -m pytest -q
	$(ISA_RESTRICTED) CONVZOO_REQUIRE_NATIVE=$(NATIVE_REQUIRED) $(BIN)/python -m pytest -q $(ISA_TESTS)
	# last: the ecosystem peers in their own venv (on 2 idle cores ~1 min of setup, ~4 min of tests)
	$(MAKE) test-peer

# The ecosystem peers (tests/interop, and the models' own timm/torchvision tests) need torchvision, which only
# imports beside the torch it was built for: PyPI's does not import beside .venv's CPU torch 2.13, so they get a venv
# of their own with torch 2.14.1 + torchvision 0.29.1. convzoo is installed from this tree without compiling
# (CONVZOO_NO_NATIVE=1): the native extension in src/ is .venv's, and convzoo falls back when it cannot load it.
PEER_VENV := .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed
PEER_TORCH := torch==2.14.1 torchvision==0.29.1

$(PEER_STAMP): pyproject.toml
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet $(PEER_TORCH) "setuptools>=64" wheel
	CONVZOO_NO_NATIVE=1 $(PEER_VENV)/bin/python -m pip install --quiet --no-build-isolation -e ".[test,ecosystem]"
	touch $(PEER_STAMP)

test-peer: $(PEER_STAMP)
	$(PEER_VENV)/bin/python -m pytest -q -m peer tests/interop
	$(PEER_VENV)/bin/python -m pytest -q -m peer tests/models -k "timm or torchvision"

test-slow: $(STAMP)
	CONVZOO_REQUIRE_NATIVE=$(NATIVE_REQUIRED) $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build src/*.egg-info src/convzoo/*.so
