# `make run` and `make test` set everything up on a fresh machine: a Python 3.13 venv
# with the pinned requirements, nginx (the buffering proxy in front of gunicorn) and, for
# the browser tests, Chromium and axe-core (npm, pinned in package-lock.json).
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
AXE := node_modules/axe-core/axe.min.js

SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: run test lint browser proxy seed check bench screenshots lighthouse clean

# the database's own work first (demo data on a first start, rollups current), then the
# production server (gunicorn.conf.py: nginx in front of gunicorn); `python app.py` runs
# Flask's own, for development
run: $(INSTALLED) proxy
	$(BIN)/flask --app app prepare-db
	$(BIN)/gunicorn -c gunicorn.conf.py "app:create_app()"

# four workers (pytest-xdist), each with its own embedded server and Chromium: much of a test
# is waiting (on the engine, a browser, a subprocess), so even on two cores more workers fill
# the gaps (this 2-core machine, 718 tests: three workers 667 s, four 611 s; 720 tests later 564 s)
test: $(INSTALLED) browser $(AXE) proxy lint
	$(BIN)/python -m pytest -n 4 --durations=20

lint: $(INSTALLED)
	$(BIN)/ruff check .

# The browser tests drive Debian's Chromium through its chromedriver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "Installing Chromium and ChromeDriver (Debian packages chromium, chromium-driver)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# axe-core, which the accessibility test runs in each page: exactly the version the lock file
# names (npm ci); Debian's nodejs and npm when the machine has no npm
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "Installing npm (Debian packages nodejs, npm)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# Lighthouse for scripts/bench_lighthouse.py, pinned in scripts/lighthouse/ (not needed by the tests)
LIGHTHOUSE := scripts/lighthouse/node_modules/.bin/lighthouse
lighthouse: $(LIGHTHOUSE)
$(LIGHTHOUSE): scripts/lighthouse/package.json scripts/lighthouse/package-lock.json $(AXE)  # $(AXE): npm itself
	cd scripts/lighthouse && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# Debian's nginx, which gunicorn.conf.py starts in front of gunicorn (deploy/nginx.conf)
proxy:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  echo "Installing nginx (Debian package nginx)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

screenshots: $(INSTALLED) browser
	$(BIN)/python scripts/screenshot.py

seed: $(INSTALLED)
	$(BIN)/python scripts/seed_demo.py

check: $(INSTALLED)
	$(BIN)/python scripts/test_hybrid_system.py

bench: $(INSTALLED) browser
	$(BIN)/python scripts/bench_core.py
	$(BIN)/python scripts/bench_analytics.py
	$(BIN)/python scripts/bench_dashboard.py

$(INSTALLED): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.13 (pyenv install 3.13)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# the project root on the venv's path, so scripts and tests import app, core, dashboard
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat -e .
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis node_modules scripts/lighthouse/node_modules
