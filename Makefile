# Sensei — two commands: `make run` starts the whole suite, `make test` passes every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck protos protos-check buf-lint buf-breaking bench soak clean format

run: $(STAMP) protos-if-missing ## Start PostgreSQL (embedded) and the four services (TLS=1: mutual TLS)
	$(if $(filter 1 yes true,$(TLS)),SENSEI_DEV_TLS=1 )$(PY) -m devstack

test: $(STAMP) protos-if-missing ## Run the whole test suite
	$(PY) -m pytest -q

check: protos-check buf-lint lint typecheck ## Static checks CI runs besides the tests

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) protos-if-missing ## Benchmarks (not tests) -> benchmarks/RESULTS.md
	$(PY) -m benchmarks

soak: $(STAMP) protos-if-missing ## Long reliability runs: load 32x400, 5 PostgreSQL restarts, 300 fuzz examples per RPC
	mkdir -p .sensei
	SENSEI_RELIABILITY_REPORT=.sensei/soak-report.jsonl $(PY) -m pytest -q -m soak tests/reliability
	SENSEI_FUZZ_PROFILE=sensei-soak SENSEI_FUZZ_REPORT=.sensei/soak-fuzz.json $(PY) -m pytest -q tests/reliability/test_fuzz.py -k generated

protos: $(STAMP) ## Regenerate sensei/ from protos/
	PYTHON=$(PY) scripts/gen_protos.sh

protos-if-missing:
	@test -f sensei/__init__.py || PYTHON=$(PY) scripts/gen_protos.sh

protos-check: $(STAMP) ## Fail if sensei/ is not what protos/ generates
	@tmp=$$(mktemp -d) && PYTHON=$(PY) scripts/gen_protos.sh $$tmp && \
	  diff -r -q -x __pycache__ sensei $$tmp/sensei && rm -rf $$tmp && echo "generated code is current"

buf-lint: $(STAMP)
	cd protos && ../$(VENV)/bin/buf lint

buf-breaking: $(STAMP)
	scripts/buf_breaking.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy services shared devstack cli examples benchmarks

clean:
	rm -rf $(VENV) .sensei
