# lumina-audit: the two commands of the README.
#   make demo   set up .venv if needed, then run the main job on the embedded tiny checkpoint
#   make test   set up .venv if needed, then ruff, mypy and the whole test suite
#   make test-fast  ruff and the tests not marked slow (tests/conftest.py): the inner loop, a few minutes
#   make check-wheel  build the wheel, install it without torch (requirements/verify.lock) into a fresh venv
#               and verify a small demo run's ledger, proof and certificate with it (scripts/check_wheel.sh)
#   make cli-docs  regenerate docs/cli.md, the CLI reference, from the commands themselves
#   make bench  python -m benchmarks.bench_signature (benchmarks and scripts are packages: every one of them
#               runs from the repository root as `python -m benchmarks.NAME` or `python -m scripts.NAME`)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCKS  := requirements/main.lock requirements/nodeps.lock pyproject.toml
STAMP  := $(VENV)/.lumina-installed

.PHONY: venv demo test test-fast lint bench golden-check check-wheel clean

venv: $(STAMP)

# Exact versions with hashes; audiocraft without its stale pins (see requirements/nodeps.lock).
$(STAMP): $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/main.lock
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/nodeps.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The golden check first: under the default pins Intel and AMD CPUs compute the same bits
# (docs/pins.md), so a mismatch is a fault of this installation and stops the demo.
demo: venv
	$(BIN)/lumina-audit golden check
	$(BIN)/python -m scripts.demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25

# The inner loop: ruff, then everything but the slow and end-to-end tests (tests/conftest.py lists them).
test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

check-wheel: venv
	FULL_PYTHON=$(CURDIR)/$(BIN)/python PYTHON=$(PYTHON) scripts/check_wheel.sh

bench: venv
	$(BIN)/python -m benchmarks.bench_signature

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# docs/cli.md, the CLI reference, generated from the commands (tests/cli/test_grammar.py fails when it drifts).
.PHONY: cli-docs
cli-docs: venv
	$(BIN)/python -m lumina_audit.cli.reference docs/cli.md
