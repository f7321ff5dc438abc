# One entry point for students, instructors, graders and CI.
# Every target creates .venv from the pinned pyproject.toml first, so a fresh clone needs nothing else.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader shells out to alembic and jupyter: the venv's bin must come first on PATH.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Tests and demos never reach the network for data; the course ships its CIFAR-10 sample.
export COURSE_OFFLINE := 1

ASSIGNMENTS ?=
WORKERS ?=
LAB_PORT ?= 8888
# Jupyter refuses to start as root (containers, CI) unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: venv demo test release check lab formgrader lint format bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location"; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ipykernel)" >/dev/null
	@touch $@

venv: $(STAMP)

release: $(STAMP)
	$(BIN)/python -m autograder release $(ASSIGNMENTS)

check: $(STAMP)
	$(BIN)/python -m autograder check $(ASSIGNMENTS)

demo: $(STAMP)
	$(BIN)/python -m autograder release $(ASSIGNMENTS)
	$(BIN)/python -m autograder check $(ASSIGNMENTS)
	$(BIN)/python -m autograder demo-class

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=release --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) $(ALLOW_ROOT)

formgrader: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) $(ALLOW_ROOT)

lint: $(STAMP)
	$(BIN)/ruff check course autograder tests benchmarks nbgrader_config.py
	$(BIN)/ruff format --check course autograder tests benchmarks
	$(BIN)/nbqa ruff source
	$(BIN)/nbqa "ruff format --check" source

format: $(STAMP)
	$(BIN)/ruff format course autograder tests benchmarks
	$(BIN)/ruff check --fix course autograder tests benchmarks
	$(BIN)/nbqa "ruff format" source

bench: $(STAMP)
	$(BIN)/python benchmarks/conv_reference.py
	$(BIN)/python benchmarks/grading.py
	$(BIN)/python benchmarks/similarity.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
