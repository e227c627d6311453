# Two commands matter: `make serve` and `make test`. Both create .venv and install the pinned
# dependencies first; a stamp keeps that to once per change of pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export NO_MKDOCS_2_WARNING := 1
export PYTHONHASHSEED := 0

.PHONY: install serve site lint format test results robustness labs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[docs,test]"
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/mkdocs serve --strict -a 127.0.0.1:8000

site: install
	$(BIN)/mkdocs build --strict

# ruff: the rules and line length are in pyproject.toml ([tool.ruff]). `make format` rewrites the code
# (ruff format, ruff check --fix); a comment or docstring line ruff reports as too long (E501) is
# rewritten by a person, since ruff wraps code, never text. `make lint` only checks, as `make test` does.

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The bash fences on the pages say `python`, as a reader would type it: that must be the venv's.
# Two workers, one torch thread each: two processes with two threads each on 2 cores run far slower.
test: install lint
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile \
		tests docs --codeblocks --durations=20 --cpu-durations=25

# Rerun every lab at the lesson preset and refresh snippets/results/ and docs/assets/labs/. Each lab
# runs on one CPU thread, so two run at a time (a lab waits for the stages it needs).
results: install
	$(BIN)/python -m lifecycle.tables
	$(BIN)/python -m lifecycle.publish --jobs 2 $(LABS)

# Not part of `make test`: every post-training direction the pages claim, checked on seeds 0, 1 and 2 at
# the lesson preset (about 3 × the lesson chain's time; the pretrain stages are cached after the first).
robustness: install
	OMP_NUM_THREADS=1 $(BIN)/python -m lifecycle.robustness

clean:
	rm -rf site .cache .pytest_cache
