# The two commands of the README: `make demo` and `make test`. Both run `make setup` first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint typecheck unit bench clean-data lock sbom

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/cim demo

lint: setup
	$(VENV)/bin/ruff check cim ingest tiles sample_models benchmarks tests scripts

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -n 2 --dist loadgroup --durations=40

test: setup
	$(VENV)/bin/ruff check cim ingest tiles sample_models benchmarks tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadgroup --durations=40

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Property-based and hostile-input fuzzing of every endpoint (docs/security.md), bounded in time:
# CIM_FUZZ_EXAMPLES examples per operation (default 200), stopped after CIM_FUZZ_SECONDS (default 900).
.PHONY: fuzz
fuzz: setup
	CIM_FUZZ_EXAMPLES=$${CIM_FUZZ_EXAMPLES:-200} timeout --signal=INT $${CIM_FUZZ_SECONDS:-900} \
		$(VENV)/bin/pytest tests/api/test_openapi_fuzz.py -q -p no:randomly
# Bring uv.lock in line with pyproject.toml, keeping every pin that still fits; `make lock UPGRADE=1` moves
# every package to the newest version its range allows. `make setup` then installs the new lock.
lock:
	@bash scripts/setup.sh --uv-only
	.tools/uv/bin/uv lock $(if $(UPGRADE),--upgrade) --python "$$(command -v python3)"

# CycloneDX SBOM of the Python, npm and Debian components (build/sbom/) and docs/licenses.md from it.
sbom: setup
	$(PY) -m scripts.sbom
