# The README's two commands are `make demo` and `make test`; everything else is a helper.
# Both create .venv on first use, so they work on a fresh machine with only Python 3.11.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PKG    := operator/modelfleet

.PHONY: demo test lint typecheck unit integration crds bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Light install: just what the main job needs (the simulator's numpy and matplotlib; no
# kopf, no cloud SDKs).
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[sim]'
	touch $@

# Everything the tests need.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.core

## demo: the main job on the embedded default (no cluster, no cloud account): validate the
## examples, show one placement decision, then simulate the bundled 24 h scenario under
## modelfleet and the three baselines and write the report and plot to out/sim/.
demo: $(VENV)/.core
	$(BIN)/modelfleet validate examples/
	$(BIN)/modelfleet plan --fleet examples/fleet examples/multicloud-failover.yaml
	$(BIN)/modelfleet simulate --compare --out out/sim

## test: lint, type-check, import contracts, then every test.
test: lint typecheck
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check operator tests hack
	$(BIN)/ruff format --check operator tests hack
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy

unit: $(VENV)/.dev
	$(BIN)/python -m pytest -q tests/unit

integration: $(VENV)/.dev
	$(BIN)/python -m pytest -q tests/integration

## crds: regenerate crds/, charts/modelfleet/crds/ and docs/api-reference.md from the API models.
crds: $(VENV)/.core
	$(BIN)/modelfleet crds
	$(BIN)/python -m modelfleet.api.reference > docs/api-reference.md

clean:
	rm -rf $(VENV) .tools .mypy_cache .pytest_cache .ruff_cache
