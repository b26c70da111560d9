# Living Codex Ops. `make test` and `make serve` do all set-up on a fresh Debian 12 machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PYTHON ?= python3.11

.PHONY: setup system-packages venv lint test serve preview up down gate bench clean

setup: system-packages venv

system-packages:
	@scripts/install-system-packages.sh

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || { echo "==> installing uv $(UV_VERSION)"; \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; }
	@echo "==> virtualenv from uv.lock"
	@$(PYTHON) -m uv sync --frozen --quiet --compile-bytecode --python $(PYTHON)
	@touch $@

lint: venv
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check --quiet .
	@echo "==> mypy"
	@$(BIN)/mypy
	@echo "==> actionlint, yamllint"
	@$(BIN)/actionlint -shellcheck $(BIN)/shellcheck
	@$(BIN)/yamllint --strict .

# pytest in shards side by side (scripts/run_tests.py): each stack shard on its own CODEX_PORT_BASE range.
test: setup lint
	@$(BIN)/python scripts/run_tests.py

serve: venv
	$(BIN)/codexops serve

up: setup
	@$(BIN)/codexops up

down: venv
	@$(BIN)/codexops down

# The main job: set-up, the local environment, the gate; the verdict and the report's path.
gate: up
	@$(BIN)/codexops gate --target local

# The service beside its anchors (static nginx, bare FastAPI), the gate and the previews: benchmarks/RESULTS.md.
bench: setup
	@$(BIN)/python benchmarks/run.py

preview: venv
	@for stack in staging production; do $(BIN)/codexops preview $$stack || exit $$?; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build reports
