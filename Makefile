# The two set-up commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The next SDK generation (revision 2026-10-15), kept apart: tests run it in a subprocess.
	rm -rf .sdk25 && $(BIN)/python -m pip install --quiet --no-deps --target .sdk25 "klaviyo-api>=25,<26"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/menura serve

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) menura-data .pytest_cache .ruff_cache
