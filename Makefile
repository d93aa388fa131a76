# Tarmac: `make run` and `make test` do all the set-up themselves on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

export TARMAC_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster
# uv from PATH, else the copy `pip install uv` puts beside the Python interpreter
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --locked
START ?= 2013-01-01
END ?= 2013-12-31
PYTEST_WORKERS ?= 2

.PHONY: help uv setup manifest landing backfill validate run test bench clean

help:
	@echo "make run                       set up, land 2013, materialize it, serve the UI on 127.0.0.1:3000"
	@echo "make test                      set up and run the whole test suite"
	@echo "make backfill START=.. END=..  land and materialize a range of days headlessly"

uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

setup: uv
	$(UV) sync --locked

# The dbt manifest is built here, never when the definitions load.
manifest: setup
	cd dbt_project && $(RUN) dbt parse --profiles-dir . --quiet

landing: setup
	$(RUN) python -m resources.cli landing --all

validate: manifest
	$(RUN) dagster definitions validate -w workspace.yaml

backfill: manifest
	$(RUN) python -m resources.cli backfill --start $(START) --end $(END)

run: manifest
	$(RUN) python -m resources.cli backfill --start 2013-01-01 --end 2013-12-31 --skip-if-materialized
	$(RUN) dagster dev -w workspace.yaml --host 127.0.0.1 --port 3000

test: validate
	$(RUN) pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

# Figures, not pass/fail: the quality checks' cost on the materialized warehouse (run a backfill first).
bench: manifest
	$(RUN) python -m bench.quality_checks

clean:
	rm -rf data .dagster/storage .dagster/history .dagster/schedules .dagster/logs dbt_project/target dbt_project/logs
