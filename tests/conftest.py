"""Shared fixtures: an isolated data directory, landing files, an instance, in-process runs."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
import yaml
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from psycopg2 import sql

from tarmac.days import days_between
from tarmac.dbt_project import manifest_path
from tarmac.orchestration.instance import redact_url
from tarmac.paths import PROJECT_ROOT, TarmacPaths
from tests.scenario import FIRST_DAY, LAST_DAY, land_scenario
from tools.dagster_dev import DagsterDev
from tools.landing import fill_landing_zone
from tools.pipeline import materialize_days

# Columns that record when and by which run a row was loaded: excluded from content comparisons.
LOAD_METADATA_COLUMNS = {"load_id", "ingested_at", "loaded_at", "quarantined_at", "audited_at", "computed_at"}


def require_service(name: str, reachable: bool, reason: str) -> None:
    """Skip the calling test when an external service (PostgreSQL, Redis, ...) is unreachable.

    With TARMAC_REQUIRE_SERVICES=1 (CI, where the services are provisioned) an unreachable service
    fails the test instead, so a broken service cannot silently turn its tests into skips.
    """
    if reachable:
        return
    if os.environ.get("TARMAC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (TARMAC_REQUIRE_SERVICES=1) but unreachable: {reason}", pytrace=False)
    pytest.skip(f"{name} is unreachable: {reason} (set TARMAC_REQUIRE_SERVICES=1 to fail instead)")


# the URL Dagster gets names the psycopg2 driver; psycopg2.connect itself takes plain libpq URLs
PG_SERVER = os.environ.get("TARMAC_TEST_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432").rstrip("/")
LIBPQ_SERVER = PG_SERVER.replace("+psycopg2://", "://", 1)


def _maintenance_connection() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(f"{LIBPQ_SERVER}/postgres", connect_timeout=3)
    conn.autocommit = True
    return conn


def database_exists(name: str) -> bool:
    conn = _maintenance_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cur.fetchone() is not None
    finally:
        conn.close()


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    """(name, url) of a database unique to this test; not created here, always dropped afterwards."""
    try:
        _maintenance_connection().close()
        reachable, reason = True, ""
    except psycopg2.OperationalError as e:
        reachable, reason = False, f"{redact_url(PG_SERVER)}: {str(e).strip()}"
    require_service("PostgreSQL", reachable, reason)
    name = f"tarmac_test_{secrets.token_hex(6)}"
    try:
        yield name, f"{PG_SERVER}/{name}"
    finally:
        conn = _maintenance_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()


REDIS_URL = os.environ.get("TARMAC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_client():
    """A client of the Redis server (TARMAC_TEST_REDIS_URL); tests keep their keys under a prefix of
    their own and delete them."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
        reachable, reason = True, ""
    except redis.RedisError as error:
        reachable, reason = False, f"{REDIS_URL}: {error}"
    require_service("Redis", reachable, reason)
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty online store of each backend: a SQLite file, or a key prefix of this test's on the
    Redis server, checked empty and gone afterwards."""
    from tarmac.online.store import RedisOnlineStore, SqliteOnlineStore

    if request.param == "sqlite":
        store = SqliteOnlineStore(tmp_path / "online.sqlite")
    else:
        store = RedisOnlineStore(request.getfixturevalue("redis_client"), f"tarmac-test-{secrets.token_hex(5)}")
    yield store
    store.clear()
    if store.backend == "redis":
        assert not list(store.client.scan_iter(match=f"{store.prefix}:*")), "the test left keys behind"
    store.close()


def pytest_configure(config: pytest.Config) -> None:
    manifest_path()  # a clear error up front if set-up did not build the manifest


# Days materialized once per session for the tests that only read them (see `real_days`).
SHARED_FIXTURES = {"real_days", "scenario_days"}
# Tests that use these fixtures materialize the pipeline; the others that do are marked by hand.
PIPELINE_FIXTURES = {"run_days", "dagster_dev", *SHARED_FIXTURES}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `pipeline` every test that materializes the pipeline (what `make test-fast` leaves out),
    and put the readers of each shared materialization in one xdist group, so that one worker
    builds it once (`--dist loadgroup`)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if PIPELINE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.pipeline)
        for name in sorted(SHARED_FIXTURES & fixtures):
            item.add_marker(pytest.mark.xdist_group(name))


@pytest.hookimpl(trylast=True)  # after pytest-xdist has added the groups to the node ids
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup`, a grouped test's id ends in @group, by which xdist sends the group to
    one worker: if a pytest or xdist upgrade loses that, every worker would build the shared days
    again, silently; stop instead."""
    if not session.config.getoption("loadgroup", default=False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup did not group {len(lost)} tests (first: {lost[0]}): "
                                "check the pytest and pytest-xdist versions")


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TarmacPaths:
    """A fresh, empty data directory for this test."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("TARMAC_DATA_DIR", str(data_dir))
    return TarmacPaths(data_dir)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a copy of tarmac.yaml with some keys changed and point TARMAC_SETTINGS at it."""

    def _settings(**changes: object) -> Path:
        raw = yaml.safe_load((PROJECT_ROOT / "tarmac.yaml").read_text())
        for dotted, value in changes.items():
            node = raw
            *parents, leaf = dotted.split("__")
            for part in parents:
                node = node[part]
            node[leaf] = value
        path = tmp_path / f"settings-{len(list(tmp_path.glob('settings-*')))}.yaml"
        path.write_text(yaml.safe_dump(raw))
        monkeypatch.setenv("TARMAC_SETTINGS", str(path))
        return path

    return _settings


# As .dagster/dagster.yaml: the `duckdb_warehouse` pool admits one writer.
ONE_WRITER = {"concurrency": {"pools": {"default_limit": 1}}}


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent instance whose `duckdb_warehouse` pool admits one writer, as dagster.yaml does."""
    with dg.instance_for_test(overrides=ONE_WRITER) as inst:
        yield inst


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME of this test's, configured by the project's own `.dagster/dagster.yaml` (the
    warehouse pool, the run queue), as the command line uses it."""

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def land(paths: TarmacPaths) -> Callable[[str, str], None]:
    def _land(start: str, end: str) -> None:
        fill_landing_zone(paths, days_between(start, end))

    return _land


def materialize(
    instance: dg.DagsterInstance, start: str, end: str, expect_success: bool = True, resources: dict | None = None
) -> list[dg.ExecuteInJobResult]:
    """Materialize every asset for start..end (both included), as `make backfill` does, with the
    definitions' resources or some `resources` in their place; with `expect_success`, fail the test
    if a run fails, naming its errors."""
    results = materialize_days(start, end, instance, resources=resources)
    if expect_success:
        failed = [r for r in results if not r.success]
        assert not failed, f"run {failed[0].run_id} failed: " + "; ".join(
            str(e.event_specific_data.error.message)
            for r in failed
            for e in r.all_events
            if e.is_failure and getattr(e.event_specific_data, "error", None)
        )
    return results


@pytest.fixture
def run_days(instance: dg.DagsterInstance) -> Callable[..., list[dg.ExecuteInJobResult]]:
    """Materialize every asset for start..end (both included); fails the test if a run fails."""

    def _run(start: str, end: str, expect_success: bool = True, resources: dict | None = None) -> list[dg.ExecuteInJobResult]:
        return materialize(instance, start, end, expect_success, resources)

    return _run


def read_warehouse(paths: TarmacPaths, sql: str, params: list | None = None) -> list[tuple]:
    """The rows of a query on the warehouse's published snapshot, opened read-only."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@dataclass(frozen=True)
class Materialized:
    """Days materialized once, in a data directory and an instance of their own, with the
    project's settings: what the tests that only read them share. A test must not change their
    data; evaluating checks again (`make check`) adds evaluations, and metrics that the
    `latest_check_metrics` view supersedes, and nothing else."""

    paths: TarmacPaths
    instance: dg.DagsterInstance
    results: list[dg.ExecuteInJobResult]

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        return read_warehouse(self.paths, sql, params)


@contextmanager
def _materialized_once(
    factory: pytest.TempPathFactory, name: str, land: Callable[[TarmacPaths], None], ranges: list[tuple[str, str]]
) -> Iterator[Materialized]:
    root = factory.mktemp(name)
    paths = TarmacPaths(root / "data")
    paths.data_dir.mkdir()
    land(paths)
    home = root / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(
        overrides=ONE_WRITER, set_dagster_home=False, temp_dir=str(home)
    ) as instance:
        with pytest.MonkeyPatch.context() as environment:  # only while materializing
            environment.setenv("TARMAC_DATA_DIR", str(paths.data_dir))
            environment.delenv("TARMAC_SETTINGS", raising=False)
            results = [r for start, end in ranges for r in materialize(instance, start, end)]
        yield Materialized(paths, instance, results)


# Real days of 2013 that the read-only tests share: the 1,048 mph wind (02-12), a week of March with
# the spring daylight-saving switch (03-10), and the autumn switch (11-03) with a departure at 2400.
REAL_RANGES = [("2013-02-11", "2013-03-13"), ("2013-10-30", "2013-11-04")]


@pytest.fixture(scope="session")
def real_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Materialized]:
    """REAL_RANGES of the real landing files, materialized once per session by the worker that
    runs the tests reading them (their xdist group)."""

    def land(paths: TarmacPaths) -> None:
        for start, end in REAL_RANGES:
            fill_landing_zone(paths, days_between(start, end))

    with _materialized_once(tmp_path_factory, "real_days", land, REAL_RANGES) as materialized:
        yield materialized


@pytest.fixture(scope="session")
def scenario_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Materialized]:
    """The hand-built scenario of tests/scenario.py, materialized once per session."""
    with _materialized_once(tmp_path_factory, "scenario_days", land_scenario, [(FIRST_DAY, LAST_DAY)]) as materialized:
        yield materialized


@pytest.fixture
def query(paths: TarmacPaths) -> Callable[[str], list[tuple]]:
    """Run a query against the warehouse, read-only."""

    def _query(sql: str, params: list | None = None) -> list[tuple]:
        return read_warehouse(paths, sql, params)

    return _query


def table_hash(paths: TarmacPaths, table: str) -> tuple[int, str]:
    """Row count and an order-independent content hash of a table, load metadata excluded."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        schema, name = table.split(".")
        columns = [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            if c not in LOAD_METADATA_COLUMNS
        ]
        col_list = ", ".join(f'"{c}"' for c in columns)
        count, digest = con.execute(
            f"select count(*), md5(string_agg(md5(row({col_list})::varchar), ',' order by md5(row({col_list})::varchar))) "
            f"from {table}"
        ).fetchone()
        return count, digest


# how often the sensors of a `dagster dev` under test tick
SENSOR_INTERVAL = 2
# how often its backfill daemon plans the next runs of a backfill: Dagster's loop waits a fixed
# 30 s (dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS, read on every iteration), which
# a `dagster dev` under test shortens through a sitecustomize module on its PYTHONPATH
BACKFILL_DAEMON_INTERVAL = 5
SITECUSTOMIZE = """import os
if os.environ.get("TARMAC_TEST_BACKFILL_DAEMON_INTERVAL"):
    import dagster._daemon.controller as controller
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = float(os.environ["TARMAC_TEST_BACKFILL_DAEMON_INTERVAL"])
"""


@pytest.fixture(params=["sqlite", "postgres"])
def dagster_dev(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DagsterDev, dg.DagsterInstance, TarmacPaths]]:
    """A `dagster dev` (webserver and daemon) on a fresh instance and data dir, with the project's
    settings but sensors that tick every few seconds and a backfill daemon that plans every few
    seconds; on SQLite and on PostgreSQL."""
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    env = {"DAGSTER_HOME": str(home), "TARMAC_DATA_DIR": str(data)}
    if request.param == "postgres":
        name, url = request.getfixturevalue("pg_database")
        shutil.copy(PROJECT_ROOT / ".dagster" / "postgres" / "dagster.yaml", home / "dagster.yaml")
        env["TARMAC_DAGSTER_PG_URL"] = url
    else:
        shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    # the project's settings, with sensors that tick every few seconds
    settings = yaml.safe_load((PROJECT_ROOT / "tarmac.yaml").read_text())
    settings["sensors"] = {f"{s}_interval_seconds": SENSOR_INTERVAL for s in ("landing", "refresh", "freshness", "alert")}
    (tmp_path / "tarmac.yaml").write_text(yaml.safe_dump(settings))
    env["TARMAC_SETTINGS"] = str(tmp_path / "tarmac.yaml")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    env["TARMAC_TEST_BACKFILL_DAEMON_INTERVAL"] = str(BACKFILL_DAEMON_INTERVAL)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # what `make run` does before `dagster dev`: create the instance's storage (and database)
    subprocess.run([sys.executable, "-m", "tools.cli", "instance"], cwd=PROJECT_ROOT, check=True, capture_output=True)

    server = DagsterDev(env, tmp_path / "dagster_dev.log")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        server.wait_until_loaded()
        yield server, instance, TarmacPaths(data)
    finally:
        server.stop()
        instance.dispose()


def planned_after_their_run(instance: dg.DagsterInstance) -> list[str]:
    """Check executions still PLANNED although the run they were planned in has ended."""
    from definitions import defs

    ended = {r.run_id for r in instance.get_runs() if r.is_finished}
    left = []
    for key in defs.get_repository_def().asset_graph.asset_check_keys:
        for record in instance.event_log_storage.get_asset_check_execution_history(
            key, limit=100_000, status={AssetCheckExecutionRecordStatus.PLANNED}
        ):
            if record.run_id in ended:
                left.append(f"{key.to_user_string()}[{record.partition}] in run {record.run_id}")
    return left
