"""The PostgreSQL instance (.dagster/postgres): same settings as the SQLite one, database made on demand.

Needs a PostgreSQL server (default postgresql+psycopg2://postgres@127.0.0.1:5432, or TARMAC_TEST_PG_SERVER);
skipped when it is unreachable, failed instead with TARMAC_REQUIRE_SERVICES=1. Each test gets its own
database, dropped afterwards whatever happened.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from tarmac.orchestration.instance import PG_URL_ENV, dagster_instance, ensure_postgres_database
from tarmac.paths import PROJECT_ROOT
from tests.conftest import database_exists as _database_exists

SQLITE_YAML = PROJECT_ROOT / ".dagster" / "dagster.yaml"
POSTGRES_YAML = PROJECT_ROOT / ".dagster" / "postgres" / "dagster.yaml"


def test_postgres_instance_has_the_same_settings_as_sqlite():
    sqlite_config = yaml.safe_load(SQLITE_YAML.read_text())
    postgres_config = yaml.safe_load(POSTGRES_YAML.read_text())
    assert postgres_config.pop("storage") == {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
    assert postgres_config == sqlite_config


def test_unreachable_server_names_the_url_without_password():
    # port 1: nothing listens there, the connection is refused at once
    with pytest.raises(RuntimeError, match=r"postgresql\+psycopg2://postgres:\*\*\*@127\.0\.0\.1:1/tarmac_nowhere") as info:
        ensure_postgres_database("postgresql+psycopg2://postgres:s3cret@127.0.0.1:1/tarmac_nowhere")
    assert "s3cret" not in str(info.value)


def test_url_without_an_installed_driver_is_a_clear_error(tmp_path, monkeypatch):
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg 3 is installed: a bare postgresql:// URL works")
    shutil.copy(POSTGRES_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(PG_URL_ENV, "postgresql://postgres@127.0.0.1:1/tarmac_nowhere")
    with pytest.raises(RuntimeError, match=r"postgresql\+psycopg2://"), dagster_instance():
        pass


def test_instance_on_postgres_creates_its_database_and_stores_runs(pg_database, tmp_path, monkeypatch):
    name, url = pg_database
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_YAML, home / "dagster.yaml")
    assert not _database_exists(name)

    # what `make` runs before `dagster dev`: creates the database and Dagster's tables in it
    env = {**os.environ, "DAGSTER_HOME": str(home), PG_URL_ENV: url}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.cli", "instance"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "run storage: PostgresRunStorage" in proc.stdout
    assert "event log storage: PostgresEventLogStorage" in proc.stdout
    assert f"DAGSTER_HOME: {home}" in proc.stdout
    assert _database_exists(name)

    @dg.asset
    def tarmac_postgres_probe() -> int:
        return 1

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(PG_URL_ENV, url)
    with dagster_instance() as instance:  # the database exists now: opening it again is a no-op
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([tarmac_postgres_probe], instance=instance)
        assert result.success

    # a fresh instance reads the run and its materialization back from PostgreSQL
    with dagster_instance() as instance:
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey("tarmac_postgres_probe")) is not None
