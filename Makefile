# sourcebook: `make run` to try it, `make test` to check it. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX ?= .sourcebook

.PHONY: install run test test-unit test-integration eval clean

install: $(STAMP)

# torch goes in first and pinned: pip then takes the CPU build, and nothing later
# pulls the multi-GB CUDA one.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/sourcebook ingest corpus --index $(INDEX)
	$(BIN)/sourcebook chat --index $(INDEX)

test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest -m "not integration"

test-integration: install
	$(BIN)/pytest -m integration

eval: install
	$(BIN)/sourcebook ingest corpus --index $(INDEX)
	$(BIN)/sourcebook eval corpus/qa.jsonl --index $(INDEX)

clean:
	rm -rf $(VENV) $(INDEX)
