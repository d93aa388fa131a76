"""Tables Tarmac writes beside Spark's (batch scores): each day a Parquet partition in Spark's
layout, rewritten whole, read back through the same DuckDB views as Spark's own tables. No Spark
needed: these are files DuckDB writes and reads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import pandas as pd

from tarmac.paths import TarmacPaths
from tarmac.spark import disk_tables, replace_partitions, view_sql


def _scores(day: str, count: int, version: str) -> pd.DataFrame:
    return pd.DataFrame({
        "flight_id": [f"AA-{i}-JFK-{day.replace('-', '')}" for i in range(count)],
        "flight_date": [pd.Timestamp(day)] * count,
        "delay_probability": [i / 10 for i in range(count)],
        "model_version": [version] * count,
        "scored_at": [datetime(2013, 3, 1, tzinfo=UTC)] * count,
    })


def _view_rows(paths: TarmacPaths) -> list[tuple]:
    [table] = disk_tables(paths, known=[])
    with duckdb.connect() as con:
        con.execute("create schema gold")
        con.execute(view_sql(table))
        return con.execute("select flight_date, model_version, count(*) from gold.predictions group by all order by all").fetchall()


def test_days_are_rewritten_whole_and_read_back_as_a_table(tmp_path) -> None:
    paths = TarmacPaths(tmp_path)
    both = pd.concat([_scores("2013-03-04", 3, "1"), _scores("2013-03-05", 2, "1")])
    replace_partitions(paths, "gold", "predictions", both, "flight_date", ["2013-03-04", "2013-03-05"])
    folder = paths.spark_warehouse / "gold.db" / "predictions"
    assert sorted(p.name for p in folder.iterdir()) == ["flight_date=2013-03-04", "flight_date=2013-03-05"]
    assert _view_rows(paths) == [(date(2013, 3, 4), "1", 3), (date(2013, 3, 5), "1", 2)]

    # a re-run of one day replaces that day only, whatever its row count
    replace_partitions(paths, "gold", "predictions", _scores("2013-03-05", 1, "2"), "flight_date", ["2013-03-05"])
    assert _view_rows(paths) == [(date(2013, 3, 4), "1", 3), (date(2013, 3, 5), "2", 1)]

    # a day of the run with no rows keeps none of its old ones; nothing is left beside the table
    replace_partitions(paths, "gold", "predictions", _scores("2013-03-05", 0, "3"), "flight_date", ["2013-03-05"])
    assert _view_rows(paths) == [(date(2013, 3, 4), "1", 3)]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["predictions"]


def test_an_unknown_engine_and_a_missing_java_are_named_with_what_to_do(monkeypatch, tmp_path) -> None:
    import pytest

    from tarmac.spark import EngineError, engine, require_java

    monkeypatch.setenv("TARMAC_ENGINE", "Spark ")
    assert engine() == "spark"
    monkeypatch.setenv("TARMAC_ENGINE", "snowflake")
    with pytest.raises(EngineError, match="TARMAC_ENGINE='snowflake' is not an engine Tarmac runs on: use one of duckdb, spark"):
        engine()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(EngineError, match="apt-get install openjdk-17-jre-headless"):
        require_java()


def test_the_dbt_profile_and_the_python_session_configure_spark_alike(monkeypatch, tmp_path) -> None:
    """The session Tarmac starts itself (to read the catalog when dbt ran elsewhere) has the
    settings dbt-spark's session gets from the profile."""
    import os

    import jinja2
    import yaml

    from tarmac.paths import DBT_PROJECT_DIR
    from tarmac.spark import session_config

    monkeypatch.setenv("TARMAC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TARMAC_SPARK_MASTER", "spark://127.0.0.1:7077")
    text = jinja2.Template((DBT_PROJECT_DIR / "profiles.yml").read_text()).render(
        env_var=lambda name, default=None: os.environ.get(name, default))
    profile = yaml.safe_load(text)["tarmac"]["outputs"]["spark"]
    assert profile["server_side_parameters"] == session_config(TarmacPaths(tmp_path))
    assert session_config(TarmacPaths(tmp_path))["spark.master"] == "spark://127.0.0.1:7077"
