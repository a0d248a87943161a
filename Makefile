# The two quick-start commands:
#   make demo   set up (virtualenv, schema) and run the main job on embedded defaults
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test lint bench-ingest bench-reconcile bench-api report-example clean

$(BIN)/mmsq: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/mmsq

demo: setup
	$(BIN)/mmsq demo

# The suite runs in TEST_WORKERS processes (pytest-xdist; each starts its own PostgreSQL
# cluster); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
test: setup
	$(BIN)/pytest -q -n $(TEST_WORKERS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy mmsq adapters

bench-ingest: setup
	$(BIN)/python bench/bench_ingest.py

# docs/report-example.png: two simulated weeks ingested, the report rendered in headless Chromium.
report-example: setup
	$(BIN)/python bench/render_report_example.py
bench-reconcile: setup
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/bench_reconcile.py
bench-api: setup
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) var build dist *.egg-info

.PHONY: bench-smsc
bench-smsc: setup
	$(BIN)/python bench/bench_smsc.py

.PHONY: bench-population
bench-population: setup
	$(BIN)/python bench/bench_population.py
.PHONY: bench-scoring
bench-scoring: setup
	$(BIN)/python bench/bench_scoring.py

.PHONY: bench-outreach
bench-outreach: setup
	$(BIN)/python bench/bench_outreach.py --dispatcher 30000
