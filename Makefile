# `make run` and `make test` set everything up on a fresh machine: a Python 3.13 venv
# with the pinned requirements (and, for the browser tests, Chromium).
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test seed check bench clean

run: $(INSTALLED)
	$(BIN)/python app.py

test: $(INSTALLED)
	$(BIN)/python -m pytest

seed: $(INSTALLED)
	$(BIN)/python scripts/seed_demo.py

check: $(INSTALLED)
	$(BIN)/python scripts/test_hybrid_system.py

bench: $(INSTALLED)
	$(BIN)/python scripts/bench_core.py

$(INSTALLED): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.13 (pyenv install 3.13)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
