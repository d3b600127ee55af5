# The two commands of the README: `make demo` and `make test`. Both set up what they need:
# a virtual environment from the lock file, a Docker engine, and the lab's base image.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint unit lab-tests bench soak docker browser venv clean image lock

# The lock pins the package with its `lab`, `otel` and `dev` extras: what the demo, the tests and
# the benchmarks need (`pip install bluegreen-mcp` alone is the lean CLI + MCP server).
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

docker:
	bash scripts/ensure-docker.sh
	bash scripts/ensure-base-image.sh

# Debian's chromium for the dashboard's browser test (from apt, never downloaded at test time).
browser:
	bash scripts/ensure-browser.sh

demo: venv docker
	$(BIN)/bluegreen demo

# mypy: strict, on src, tests and bench ([tool.mypy] in pyproject.toml).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

lab-tests: venv docker browser
	$(BIN)/pytest tests/lab -q

# The fast checks first (lint, then the unit tests: about a minute, no Docker), so a broken commit
# fails before Docker and the lab are brought up. Make runs these prerequisites in this order.
test: lint unit lab-tests

bench: venv docker
	$(BIN)/python -m bench.status
	$(BIN)/python -m bench.deploy
	$(BIN)/python -m bench.switch
	$(BIN)/python -m bench.scale_out

# 200 switches under load, then status/deploy/switch over a slow, lossy link (~25 min).
soak: venv docker
	$(BIN)/python -m bench.soak --switches 200 --slow

# The MCP server's container image (Dockerfile), tagged bluegreen-mcp:local.
image: venv docker
	PYTHON=$(BIN)/python bash scripts/build-server-image.sh

# Both locks, with uv (pip install uv): requirements.lock for the venv (the package with its lab,
# otel and dev extras) and requirements-server.lock for the image (runtime + otel), the second
# constrained by the first so both pin the same versions.
lock:
	uv pip compile pyproject.toml --extra dev --extra lab --extra otel --generate-hashes -o requirements.lock --python-version 3.11
	uv pip compile pyproject.toml --extra otel --generate-hashes -c requirements.lock -o requirements-server.lock --python-version 3.11

clean:
	-$(BIN)/bluegreen lab down
	rm -rf $(VENV)
