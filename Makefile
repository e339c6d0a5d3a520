# lumina-audit: the two commands of the README.
#   make demo   set up .venv if needed, then run the main job on the embedded tiny checkpoint
#   make test   set up .venv if needed, then ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCKS  := requirements/main.lock requirements/nodeps.lock pyproject.toml
STAMP  := $(VENV)/.lumina-installed

.PHONY: venv demo test lint bench golden-check clean

venv: $(STAMP)

# Exact versions with hashes; audiocraft without its stale pins (see requirements/nodeps.lock).
$(STAMP): $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/main.lock
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/nodeps.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: venv
	$(BIN)/lumina-audit golden check
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: venv
	$(BIN)/python benchmarks/bench_signature.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
