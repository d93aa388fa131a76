# Tarmac: `make run` and `make test` do all the set-up themselves on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

export TARMAC_DATA_DIR ?= $(CURDIR)/data
# The Dagster instance: TARMAC_INSTANCE=sqlite (default, storage in .dagster) or postgres
# (.dagster/postgres: runs, events and schedules in the database TARMAC_DAGSTER_PG_URL names).
TARMAC_INSTANCE ?= sqlite
ifeq ($(TARMAC_INSTANCE),postgres)
export DAGSTER_HOME ?= $(CURDIR)/.dagster/postgres
# psycopg2 named explicitly: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, not installed
export TARMAC_DAGSTER_PG_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/tarmac_dagster
else
export DAGSTER_HOME ?= $(CURDIR)/.dagster
endif
# uv from PATH, else the copy `pip install uv` puts beside the Python interpreter
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --locked
START ?= 2013-01-01
END ?= 2013-12-31
# Three workers on two cores: the end-to-end tests spend much of their minutes waiting for Dagster's
# daemon (its backfill loop ticks every 30 s), and a third worker runs other tests meanwhile
# (the whole suite: 755 s with two workers, 682 s with three, on a 2-core machine). Since then the
# suite has grown to 864 s on three, with the CPU busy 98% of that time: it is bound by its CPU work.
PYTEST_WORKERS ?= 3
# The tests' scratch space (their data dirs, DuckDB files and SQLite instances) goes in memory where
# the machine has a writable /dev/shm: on disk, every event a run records in a SQLite instance is a
# commit that waits for the disk (a 7-day run: 14.4 s on disk, 11.5 s in memory). Nothing a test
# asserts depends on the disk; `make test TEST_TMPDIR=` keeps the scratch space on disk.
TEST_TMPDIR ?= $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm)
PYTEST := $(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR) )$(RUN) pytest -n $(PYTEST_WORKERS) -p no:cacheprovider --dist loadgroup

.PHONY: help uv java setup spark-cluster spark-cluster-stop manifest instance landing backfill check check-report lint validate run replay test test-fast bench mlflow serve screenshot clean

help:
	@echo "make run                       set up, land 2013, materialize it, serve the UI on 127.0.0.1:3000"
	@echo "make test                      set up, lint, validate the definitions and run the whole test suite"
	@echo "make test-fast                 lint and the tests that materialize no pipeline (about a minute)"
	@echo "make backfill START=.. END=..  land and materialize a range of days headlessly"
	@echo "make check START=.. END=..     run every asset check of the range, materializing nothing"
	@echo "make check-report              every check over 2013, tallied per month in docs/CHECKS.md"
	@echo "make replay [SECONDS_PER_DAY=60] play 2013 back one landing day at a time; sensors drive the pipeline"
	@echo "make mlflow                    the MLflow UI (models, versions, the champion) on 127.0.0.1:5000"
	@echo "make serve                     the serving API on 127.0.0.1:8000, the speed layer replaying silver beside it"
	@echo "make bench [QUICK=1]           the pipeline against its floor at SF=1 and 10; writes BENCHMARKS.md"
	@echo "TARMAC_INSTANCE=postgres make .. keep the Dagster instance in PostgreSQL instead of SQLite"
	@echo "TARMAC_ENGINE=spark make ..    build the layers on Spark (local[2]; TARMAC_SPARK_MASTER for a cluster)"
	@echo "make spark-cluster[-stop]      a Spark master and two workers on 127.0.0.1:7077"

uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# The Spark engine (pyspark with Spark's jars, dbt-spark) is an extra, installed when asked for
# (SPARK=1 or TARMAC_ENGINE=spark) and in CI, which runs the Spark tests; Spark needs Java 17, which
# the Makefile installs from Debian's packages when it runs as root. Without it, installed
# packages are left as they are (--inexact), so that a tree with Spark keeps it.
SPARK ?= $(if $(filter spark,$(TARMAC_ENGINE)),1,$(if $(filter true,$(CI)),1,))

# Bytecode is compiled once here: every dbt invocation, step and server is a new Python process,
# and where PYTHONDONTWRITEBYTECODE is set each of them would otherwise compile its imports again.
setup: uv $(if $(SPARK),java)
	$(UV) sync --locked --compile-bytecode $(if $(SPARK),--extra spark,--inexact)

java:
	@command -v java >/dev/null 2>&1 || [ -x "$${JAVA_HOME:-/nonexistent}/bin/java" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Spark needs Java 17: installing openjdk-17-jre-headless"; \
	    apt-get install -y -q openjdk-17-jre-headless >/dev/null || { apt-get update -q && apt-get install -y -q openjdk-17-jre-headless; }; \
	  else \
	    echo "Spark needs Java 17 and no java is on PATH: install it (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless)" >&2; exit 1; \
	  fi; }

# The dbt manifest is built here, never when the definitions load; so is the SQL of the analyses
# the feature store runs (point_in_time_features for the offline store, feature_events for the
# speed layer's replay), compiled in their own target path on an in-memory profile.
manifest: setup
	cd dbt_project && $(RUN) dbt parse --profiles-dir . --quiet
	cd dbt_project && $(RUN) dbt compile --profiles-dir . --target compile --target-path target/analyses \
	  --select point_in_time_features feature_events --quiet > target/analyses.log || { cat target/analyses.log; exit 1; }

# Creates DAGSTER_HOME's storage (and the PostgreSQL database) before anything else opens it.
instance: setup
	$(RUN) python -m tools.cli instance

landing: setup
	$(RUN) python -m tools.cli landing --all

# ruff (the project's rules in pyproject.toml) and import-linter (its layers: tools > definitions >
# sensors > assets > resources > the tarmac library; serving on the library alone; no cycles).
lint: setup
	$(RUN) ruff check .
	$(RUN) lint-imports

# Loads the definitions as the webserver and daemon do ([tool.dg] in pyproject.toml).
validate: manifest
	$(RUN) dg check defs --no-check-yaml

backfill: manifest
	$(RUN) python -m tools.cli backfill --start $(START) --end $(END)

# Every asset check of the range on the materialized warehouse, materializing nothing (CI runs it).
check: manifest
	$(RUN) python -m tools.cli check --start $(START) --end $(END) $(if $(JSON),--json $(JSON))

# The year's check report: every check over START..END (default: 2013) of the materialized warehouse,
# tallied per check and month in docs/CHECKS.md with a plot in docs/checks/ (`make backfill` first).
check-report: manifest
	$(RUN) python -m tools.cli check --start $(START) --end $(END) --report docs/CHECKS.md || true

# Materializes 2013, then serves the UI with the sensors running: they find every landed file
# already loaded, so nothing is launched twice.
run: manifest instance
	$(RUN) python -m tools.cli backfill --start 2013-01-01 --end 2013-12-31 --skip-if-materialized
	$(RUN) dg dev --no-check-yaml --host 127.0.0.1 --port 3000

# Plays 2013 back into an empty landing zone while the UI, daemon and sensors run: watch each day
# arrive, load and propagate (stop with Ctrl-C; `make clean` starts over).
replay: manifest instance
	$(RUN) python -m tools.cli replay $(if $(SECONDS_PER_DAY),--seconds-per-day $(SECONDS_PER_DAY)) &
	$(RUN) dg dev --no-check-yaml --host 127.0.0.1 --port 3000

test: lint validate
	$(PYTEST) --durations=25

# The inner loop: no test that materializes the pipeline (marked `pipeline`, see tests/conftest.py).
test-fast: lint manifest
	$(PYTEST) -m "not pipeline"

# Figures, not pass/fail, never part of `make test`: the pipeline against its floor (one DuckDB
# script) for the year at SF=1 and SF=10, one day's fixed and incremental cost, the checks' share,
# peak memory and the real-time path, each in workspaces of its own under a temporary folder; writes
# BENCHMARKS.md and docs/benchmarks/*.png. QUICK=1: a smoke run on 14 days (report in the work folder).
bench: manifest
	$(RUN) python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# A Spark standalone cluster on this machine: a master (spark://127.0.0.1:7077) and two workers, all
# bound to 127.0.0.1, kept in $(TARMAC_DATA_DIR)/spark-cluster; then
# TARMAC_ENGINE=spark TARMAC_SPARK_MASTER=spark://127.0.0.1:7077 make backfill START=.. END=..
SPARK_WORKERS ?= 2
spark-cluster: export SPARK := 1
spark-cluster: setup
	$(RUN) python -m tools.spark_cluster start --workers $(SPARK_WORKERS)

spark-cluster-stop:
	$(RUN) python -m tools.spark_cluster stop

# The MLflow UI over the data dir's tracking store and model registry (runs, versions, the champion).
MLFLOW_PORT ?= 5000
mlflow: setup
	@[ -f "$(TARMAC_DATA_DIR)/mlflow/mlflow.db" ] || { echo "no model registry in $(TARMAC_DATA_DIR)/mlflow: train a model first (make run, or make backfill)" >&2; exit 1; }
	MLFLOW_DISABLE_TELEMETRY=true $(RUN) mlflow ui --backend-store-uri "sqlite:///$(TARMAC_DATA_DIR)/mlflow/mlflow.db" \
	  --host 127.0.0.1 --port $(MLFLOW_PORT)

# The serving API (one worker) on 127.0.0.1:$(SERVE_PORT). With the embedded event stream
# (online.stream: replay) it also replays silver's days through the speed layer into the online
# store; with push it does too, then applies POST /events; with Redis Streams the speed layer is
# `python -m tools.cli speed-layer --follow`.
SERVE_PORT ?= 8000
serve: manifest
	@[ -f "$(TARMAC_DATA_DIR)/warehouse.duckdb" ] || { echo "no warehouse in $(TARMAC_DATA_DIR): materialize the days first (make backfill or make run)" >&2; exit 1; }
	$(RUN) python -m serving --port $(SERVE_PORT)

# The README's pictures of the UI (the asset graph, a check's and a dbt test's Partitions view, the
# backfills, the runs), from the instance in $(DAGSTER_HOME) (run `make run` or `make backfill`
# first): headless Chromium renders the UI of a read-only webserver started for it.
screenshot: manifest
	@[ -n "$${CHROMIUM:-}" ] || command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y chromium; \
	  else echo "make screenshot needs Chromium: sudo apt-get install chromium (or set CHROMIUM=/path/to/chrome)" >&2; exit 1; fi; }
	$(RUN) python docs/screenshot.py --serve --out docs/asset-graph.png \
	  --page "/assets/gold/flight_features?view=checks&checkDetail=drift|Partitions" docs/ui/check-partitions.png \
	  --page "/assets/silver/flights?view=checks&checkDetail=assert_row_conservation_flights|Partitions" docs/ui/dbt-test-partitions.png \
	  --page "/assets/landing/flights?view=partitions" docs/ui/landing-partitions.png \
	  --page /overview/backfills docs/ui/backfills.png \
	  --page /runs docs/ui/runs.png

clean:
	rm -rf data dbt_project/target dbt_project/logs
	rm -rf .dagster/storage .dagster/history .dagster/schedules .dagster/logs .dagster/.tarmac-instance.lock
	rm -rf .dagster/postgres/storage .dagster/postgres/history .dagster/postgres/schedules .dagster/postgres/logs
