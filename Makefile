# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= restock-data
DEMO_CSV := $(HOME_DIR)/demo_sales.csv

.PHONY: demo test test-slow install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch is pinned to the CPU build (torch==2.13.0 in pyproject.toml): an unpinned torch
# would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev,scale]'
	touch $@

install: $(VENV)/.installed

PORT ?= 8000

# Generate two years of demo sales, train the ensemble on them, and serve the API and UI.
demo: install
	$(BIN)/restock --home $(HOME_DIR) demo-data $(DEMO_CSV) --products 40 --stores 2 --days 730
	$(BIN)/restock --home $(HOME_DIR) retrain $(DEMO_CSV)
	@echo
	@echo "restock is serving on http://127.0.0.1:$(PORT)  (UI: http://127.0.0.1:$(PORT)/ui)"
	@echo "try: curl -s -X POST http://127.0.0.1:$(PORT)/forecast -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"product_id\": \"P0001\", \"days\": 14, \"on_hand\": 40}'"
	@echo
	$(BIN)/restock --home $(HOME_DIR) serve --port $(PORT)

test: install
	$(BIN)/python -m pytest -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
