"""Opening the Dagster instance from more than one process at a time, on SQLite or PostgreSQL.

Dagster's SQLite run and schedule storages create their tables on first use without a guard: two
processes that open a fresh DAGSTER_HOME together (two `make backfill`s, a backfill and a test) can
both try to create them, and one dies on "table already exists". Every Tarmac process opens the
instance through `dagster_instance()`, which creates the storages while holding an exclusive file
lock in DAGSTER_HOME, so the second process waits and then finds them made.

When DAGSTER_HOME's dagster.yaml keeps the storage in PostgreSQL (.dagster/postgres/dagster.yaml,
whose URL comes from TARMAC_DAGSTER_PG_URL), `dagster_instance()` first creates the database the URL
names if the server does not have it yet: Dagster creates its tables, but not the database.
The URL must name the psycopg2 driver, postgresql+psycopg2://...: dagster-postgres installs psycopg2,
and SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import dagster as dg
import yaml

from tarmac.orchestration.recovery import default_instance_config

LOCK_FILE = ".tarmac-instance.lock"


class InstanceError(RuntimeError):
    """The Dagster instance cannot be opened as configured: one line saying what and where."""
PG_URL_ENV = "TARMAC_DAGSTER_PG_URL"
MAINTENANCE_DATABASE = "postgres"


def redact_url(url: str) -> str:
    """The URL with any password (in the user part or the query) replaced by ***, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def ensure_postgres_database(url: str) -> None:
    """Create the database `url` names, unless the server already has it.

    Connects to the `postgres` maintenance database on the same server (same user, host, port and
    options) and runs CREATE DATABASE; a URL without a database name leaves nothing to create.
    """
    import psycopg2
    from psycopg2 import errors, sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        return
    # libpq takes postgresql:// or postgres://, not SQLAlchemy's postgresql+psycopg2://
    maintenance_url = urlunsplit(parts._replace(scheme=parts.scheme.split("+")[0], path=f"/{MAINTENANCE_DATABASE}"))
    try:
        conn = psycopg2.connect(maintenance_url, connect_timeout=5)
    except psycopg2.OperationalError as e:
        raise InstanceError(
            f"cannot connect to PostgreSQL for the Dagster instance at {redact_url(url)} "
            f"(via its `{MAINTENANCE_DATABASE}` database, to create `{name}` if missing): {str(e).strip()}"
        ) from e
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except (errors.DuplicateDatabase, errors.UniqueViolation):
                    pass  # another process created it between our check and our CREATE
    finally:
        conn.close()


def check_postgres_driver(url: str) -> None:
    """A clear error, before Dagster's deep traceback, when SQLAlchemy's driver for `url` is not installed."""
    from sqlalchemy.engine import make_url

    try:
        make_url(url).get_dialect().import_dbapi()
    except ImportError as e:
        raise InstanceError(
            f"{PG_URL_ENV}={redact_url(url)} needs the Python module `{e.name}`, which is not installed: "
            "dagster-postgres brings psycopg2, so write postgresql+psycopg2://... "
            "(SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3)"
        ) from e


def uses_postgres(home: str | os.PathLike[str]) -> bool:
    """Whether the dagster.yaml in `home` keeps the instance's storage in PostgreSQL."""
    config_file = Path(home) / "dagster.yaml"
    if not config_file.exists():
        return False
    config = yaml.safe_load(config_file.read_text()) or {}
    return "postgres" in (config.get("storage") or {})


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """`DagsterInstance.get()`, with its storages initialised under a lock shared by all processes.

    A DAGSTER_HOME without dagster.yaml gets the project's default one first."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise InstanceError("DAGSTER_HOME is not set; the Makefile sets it to ./.dagster")
    Path(home).mkdir(parents=True, exist_ok=True)
    with open(Path(home) / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            config_file = Path(home) / "dagster.yaml"
            if not config_file.exists():
                # without it Dagster runs with no warehouse pool: two writers would meet on DuckDB's lock

                config_file.write_text(default_instance_config(), encoding="utf-8")
                print(f"{config_file}: written with the project's default instance settings "
                      "(the warehouse pool, the run queue, run monitoring)", file=sys.stderr)
            if uses_postgres(home):
                url = os.environ.get(PG_URL_ENV)
                if not url:
                    raise InstanceError(
                        f"{Path(home) / 'dagster.yaml'} keeps the instance in PostgreSQL but {PG_URL_ENV} "
                        "is not set; e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/tarmac_dagster"
                    )
                check_postgres_driver(url)
                ensure_postgres_database(url)
            instance = dg.DagsterInstance.get()
            # touching each storage makes it create its schema now, while we hold the lock
            instance.get_runs(limit=1)
            instance.event_log_storage.get_asset_records([])
            if instance.schedule_storage is not None:
                instance.schedule_storage.all_instigator_state()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance
