# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: demo test docs lint format bench bench-topologies soak fuzz clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[testing,demo,bench]'
	touch $(STAMP)

# the demo installs only what it needs (the `demo` extra): fast on first use
DEMO_STAMP = $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	PYTHONPATH=. $(BIN)/pserve development.ini

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html
	$(BIN)/sphinx-build -W -q -b doctest docs docs/_build/doctest
	$(BIN)/pytest

docs: $(STAMP)
	$(BIN)/sphinx-build -W -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# the HTTP layer's load generator is Debian's wrk, installed here if missing
# (as root, or with password-less sudo; like .ci/run installs chromium);
# without it the benchmark skips its HTTP layer
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo='sudo -n'; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	} || echo 'bench: no wrk; the HTTP layer is skipped'
	$(BIN)/python -m bench

bench-topologies: $(STAMP)
	$(BIN)/python -m bench.topologies

# `make soak SOAK_SECONDS=10 SOAK_CLIENTS=8` for a short one
SOAK_SECONDS ?= 60
SOAK_CLIENTS ?= 32

soak: $(STAMP)
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS)

fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python -m fuzz --seconds 120

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
