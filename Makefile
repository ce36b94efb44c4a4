# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= restock-data
DEMO_CSV := $(HOME_DIR)/demo_sales.csv

.PHONY: demo demo-run demo-smoke test test-slow test-e2e install frontend clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch is pinned to the CPU build (torch==2.13.0 in pyproject.toml): an unpinned torch
# would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev,scale]'
	touch $@

install: $(VENV)/.installed

# the demo installs into the project's own venv only: with BIN=/another/venv/bin it uses
# that venv as it is (and never pip-installs this checkout into it)
DEMO_INSTALL := $(if $(filter $(VENV)/bin,$(BIN)),install)

PORT ?= 8000
# the demo's size; `make demo-smoke` (CI) runs it small: DEMO_PRODUCTS=3 DEMO_DAYS=150 EPOCHS=2
DEMO_PRODUCTS ?= 40
DEMO_STORES ?= 2
DEMO_DAYS ?= 730
EPOCHS ?=

# Generate two years of demo sales, train the ensemble on them, and serve the API and UI.
demo: $(DEMO_INSTALL)
	@$(MAKE) --no-print-directory demo-run

# The demo's steps without the install.
demo-run:
	$(BIN)/restock --home $(HOME_DIR) demo-data $(DEMO_CSV) --products $(DEMO_PRODUCTS) \
	  --stores $(DEMO_STORES) --days $(DEMO_DAYS)
	$(BIN)/restock --home $(HOME_DIR) retrain $(DEMO_CSV) $(if $(EPOCHS),--epochs $(EPOCHS))
	@echo
	@echo "restock is serving on http://127.0.0.1:$(PORT)  (UI: http://127.0.0.1:$(PORT)/ui)"
	@echo "try: curl -s -X POST http://127.0.0.1:$(PORT)/forecast -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"product_id\": \"P0001\", \"days\": 14, \"on_hand\": 40}'"
	@echo
	$(BIN)/restock --home $(HOME_DIR) serve --port $(PORT)

# CI: the README's demo, small, in a temporary home on a free port, answered through curl.
demo-smoke: $(DEMO_INSTALL)
	BIN=$(BIN) .ci/demo-smoke

# The React component (frontend/): node packages from package-lock.json when node_modules is
# missing or the lock file changed, its unit tests (vitest), and the demo page build that the
# end-to-end browser tests (tests/e2e, marker e2e) open.
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

frontend: frontend/node_modules/.package-lock.json
	cd frontend && npm test
	cd frontend && npm run build:demo

test: install frontend
	$(BIN)/python -m pytest -m "not slow"

test-e2e: install frontend
	$(BIN)/python -m pytest -m e2e

test-slow: install
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
