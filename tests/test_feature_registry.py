"""The feature registry: every feature of docs/design.md#features defined once, versions that
cannot silently drift, and the contract, code versions and column docs that are generated from it."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import timedelta
from typing import Any

import dagster as dg
import ibis.expr.datatypes as dt
import pandera.ibis as pa
import pytest
import yaml

from assets.dbt_translator import TarmacDbtTranslator
from tarmac.dbt_project import compiled_analysis, manifest_path
from tarmac.features import registry as registry_module
from tarmac.features.registry import (
    LOCK_COMMAND,
    REGISTRY_PATH,
    FeatureRegistryError,
    categorical_features,
    definition_fingerprint,
    entity_keys,
    feature_registry,
    feature_versions,
    features_fingerprint,
    model_features,
    parse_registry,
    read_lock,
    stale_lock_entries,
    unversioned_changes,
    write_lock,
)
from tarmac.quality.contracts import UTC, GoldFlightFeatures, GoldTrainingSet, _bounded, _Contract

DESIGN_FEATURES = {
    "origin_dep_delay_avg_1h", "origin_departures_1h", "origin_cancelled_3h", "carrier_dep_delay_avg_24h",
    "route_dep_delay15_rate_7d", "temp_f", "wind_speed_mph", "visib_mi", "precip_in", "humid",
    "plane_age_years", "plane_seats", "dep_hour_local", "day_of_week", "month", "carrier", "origin", "dest",
    "distance_mi",
}
NOT_FEATURES = ["flight_id", "flight_date", "sched_dep_ts", "prediction_ts", "load_id", "computed_at"]


class ExpectedGoldFlightFeatures(_Contract):
    """gold.flight_features' contract written out by hand, in the table's column order."""

    flight_id: dt.String = pa.Field(unique=True)
    flight_date: dt.Date
    sched_dep_ts: UTC
    prediction_ts: UTC
    carrier: dt.String
    origin: dt.String = pa.Field(isin=["EWR", "JFK", "LGA"])
    dest: dt.String
    distance_mi: dt.Int32 = _bounded("flights", "distance")
    dep_hour_local: dt.Int32 = pa.Field(ge=0, le=23)
    day_of_week: dt.Int64 = pa.Field(ge=1, le=7)
    month: dt.Int32 = pa.Field(ge=1, le=12)
    origin_dep_delay_avg_1h: dt.Float64 = _bounded("flights", "dep_delay")
    origin_departures_1h: dt.Int64 = pa.Field(ge=0)
    origin_cancelled_3h: dt.Int64 = pa.Field(ge=0)
    carrier_dep_delay_avg_24h: dt.Float64 = _bounded("flights", "dep_delay")
    route_dep_delay15_rate_7d: dt.Float64 = pa.Field(ge=0, le=1, nullable=True)
    temp_f: dt.Float64 = _bounded("weather", "temp")
    wind_speed_mph: dt.Float64 = _bounded("weather", "wind_speed")
    visib_mi: dt.Float64 = _bounded("weather", "visib")
    precip_in: dt.Float64 = _bounded("weather", "precip")
    humid: dt.Float64 = _bounded("weather", "humid")
    plane_age_years: dt.Int32 = pa.Field(ge=0, le=120, nullable=True)
    plane_seats: dt.Int32 = pa.Field(ge=1, le=1000, nullable=True)
    load_id: dt.String
    computed_at: UTC


def _document() -> dict[str, Any]:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))


def test_every_spec_feature_is_defined_once_and_is_a_contract_column():
    columns = _document()["models"][0]["columns"]
    defined = [c["name"] for c in columns if "feature" in (c.get("meta") or {})]
    assert sorted(defined) == sorted(DESIGN_FEATURES)  # once each, nothing else
    assert model_features() == defined
    contract_columns = list(GoldFlightFeatures.to_schema().columns)
    assert [c for c in contract_columns if c not in NOT_FEATURES] == model_features()
    assert categorical_features() == ["carrier", "origin", "dest"]
    assert set(feature_versions()) == DESIGN_FEATURES


def _column_contract(column) -> tuple:
    """What a column's contract promises: its type, nullability, uniqueness and checks with their
    parameters. (Check objects compare their dispatched functions too, which depend on which
    pandera backends the process has loaded by then: not part of the contract.)"""
    checks = sorted((check.name, repr(check.statistics)) for check in column.checks)
    return str(column.dtype), column.nullable, column.unique, column.coerce, checks


def test_the_gold_contract_generated_from_the_registry_is_the_expected_one():
    generated, expected = GoldFlightFeatures.to_schema(), ExpectedGoldFlightFeatures.to_schema()
    assert list(generated.columns) == list(expected.columns)  # strict contracts: the table's order
    for name, column in expected.columns.items():
        assert _column_contract(generated.columns[name]) == _column_contract(column), name
    assert (generated.strict, generated.coerce) == (True, False)
    training = GoldTrainingSet.to_schema().columns
    assert list(training) == [*expected.columns, "is_delayed"]


def test_windows_entities_and_sources_are_the_ones_the_sql_computes():
    # the compiled SQL of gold's macro (the offline store's analysis, DuckDB's running totals): its
    # windows are generated from the registry, and this reads back what was generated
    sql = compiled_analysis("point_in_time_features")
    passes = re.findall(
        r"from \(\n\s*select [^\n]*\n\s*from (\w+)\n.*?partition by ([\w, ]+)\n.*?"
        r"\n\s*select\n\s*t\.flight_id,\n(.*?)\n\s*from targets t\n.*?"
        r"t\.prediction_ts - interval (\d+) (minute|hour|day) >= upto_start\.ts",
        sql, flags=re.S,
    )
    windowed = {}
    for source, keys, aggregates, amount, unit in passes:
        for name in re.findall(r"\bas (\w+)", aggregates):
            windowed[name] = (source, tuple(k.strip() for k in keys.split(",")), timedelta(**{f"{unit}s": int(amount)}))
    registry = feature_registry()
    assert windowed == {
        n: (f.source, entity_keys(f.entity), f.window)
        for n, f in registry.items() if f.aggregation in {"mean", "count", "rate"}
    }
    weather = [f for f in registry.values() if f.source == "weather"]
    assert len(weather) == 5
    for f in weather:
        hours = int(f.window.total_seconds() // 3600)
        assert f"- interval {hours} hour\n        then lw.{f.value} end as {f.name}," in sql, f.name


def test_the_lock_file_records_every_feature_version():
    registry, lock = feature_registry(), read_lock()
    assert not unversioned_changes(registry, lock), "\n".join(unversioned_changes(registry, lock))
    stale = stale_lock_entries(registry, lock)
    assert not stale, f"the lock file is out of date; run `{LOCK_COMMAND}`:\n" + "\n".join(stale)


def test_a_definition_changed_without_a_new_version_is_caught(tmp_path):
    registry = feature_registry()
    lock_path = tmp_path / "lock.json"
    write_lock(registry, lock_path)
    lock = read_lock(lock_path)
    name = "route_dep_delay15_rate_7d"
    wider = dataclasses.replace(registry[name], window=timedelta(days=14))
    changed = {**registry, name: wider}
    assert unversioned_changes(changed, lock) == [
        f"{name}: its definition changed but its version is still 1: bump its version to 2 and run `{LOCK_COMMAND}`"
    ]
    with pytest.raises(FeatureRegistryError, match=name):
        write_lock(changed, lock_path)  # --lock refuses it too
    bumped = {**registry, name: dataclasses.replace(wider, version=2)}
    assert unversioned_changes(bumped, lock) == []
    assert stale_lock_entries(bumped, lock) == [f"{name}: not recorded as version 2"]
    write_lock(bumped, lock_path)
    lowered = {**registry, name: dataclasses.replace(wider, version=1)}
    assert "versions never go down" in unversioned_changes(lowered, read_lock(lock_path))[0]
    # the wording of a description and the owner are not the feature's definition
    reworded = dataclasses.replace(registry[name], description="Reworded.", owner="team:other")
    assert definition_fingerprint(reworded) == definition_fingerprint(registry[name])


def test_bumping_a_feature_version_changes_the_gold_code_versions(monkeypatch):
    from assets.medallion import daily_gold_models, daily_silver_models

    nodes = json.loads(manifest_path().read_text())["nodes"]
    models = {
        key: nodes[f"model.tarmac.{model}"]
        for key, model in [(("gold", "flight_features"), "gold_flight_features"),
                           (("gold", "training_set"), "gold_training_set"),
                           (("silver", "flights"), "silver_flights")]
    }
    translator = TarmacDbtTranslator()

    def code_versions() -> dict[tuple[str, ...], str | None]:
        return {key: translator.get_code_version(props) for key, props in models.items()}

    before = code_versions()
    for key, version in before.items():
        asset_key = dg.AssetKey(list(key))
        assets_def = daily_gold_models if key[0] == "gold" else daily_silver_models
        assert assets_def.code_versions_by_key[asset_key] == version  # the assets use this translator
    assert before[("gold", "flight_features")].endswith(f"-f{features_fingerprint()}")

    registry = feature_registry()
    bumped = {**registry, "temp_f": dataclasses.replace(registry["temp_f"], version=2)}
    monkeypatch.setattr(registry_module, "feature_registry", lambda: bumped)
    after = code_versions()
    assert after[("gold", "flight_features")] != before[("gold", "flight_features")]
    assert after[("gold", "training_set")] != before[("gold", "training_set")]
    assert after[("silver", "flights")] == before[("silver", "flights")]


def test_feature_descriptions_reach_the_gold_column_schemas():
    from assets.medallion import daily_gold_models

    registry = feature_registry()
    for path in (["gold", "flight_features"], ["gold", "training_set"]):
        key = dg.AssetKey(path)
        columns = daily_gold_models.specs_by_key[key].metadata["dagster/column_schema"].columns
        described = {c.name: c.description for c in columns if c.name in registry}
        assert described == {n: f.description for n, f in registry.items()}, key


def _with(change: dict[str, Any], column: str = "origin_dep_delay_avg_1h") -> dict[str, Any]:
    document = copy.deepcopy(_document())
    entry = next(c for c in document["models"][0]["columns"] if c["name"] == column)
    for field, value in change.items():
        target = entry if field in {"data_type", "description"} else entry["meta"]["feature"]
        if value is None:
            target.pop(field)
        else:
            target[field] = value
    return document


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"entity": "airport"}, "entity"),
        ({"source": "arrivals"}, "source"),
        ({"aggregation": "median"}, "aggregation"),
        ({"window": "1 hour"}, "window"),
        ({"version": None}, "version"),
        ({"version": "1"}, "version"),
        ({"verison": 2}, "verison"),
        ({"bounds": [10, 1]}, "bounds"),
        ({"bounds": {"from": "dep_delay"}}, "bounds"),
        ({"data_type": "float"}, "data_type"),
        ({"description": None}, "description"),
        ({"value": None}, "value"),
    ],
)
def test_an_invalid_definition_names_its_feature_and_field(change, field):
    with pytest.raises(FeatureRegistryError, match=rf"feature 'origin_dep_delay_avg_1h', field '{field}'"):
        parse_registry(_with(change))


def test_a_feature_defined_twice_is_an_error():
    document = _document()
    columns = document["models"][0]["columns"]
    columns.append(copy.deepcopy(next(c for c in columns if c["name"] == "temp_f")))
    with pytest.raises(FeatureRegistryError, match=r"feature 'temp_f', field 'name': defined twice"):
        parse_registry(document)


def test_the_cli_prints_the_registry(capsys):
    from tools.cli import main

    assert main(["features"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "entity", "source", "window", "version", "owner"]
    assert lines[1:] and [line.split()[0] for line in lines[1:]] == model_features()
    route = next(line.split() for line in lines if line.startswith("route_dep_delay15_rate_7d"))
    assert route == ["route_dep_delay15_rate_7d", "route", "departures", "7d", "1", "team:ml-features"]


def test_editing_a_macro_the_features_call_changes_their_code_version(tmp_path, monkeypatch):
    """gold's SQL lives in macros (shared with the offline store): a change in a macro that
    point_in_time_features calls, however deep, must change the code version."""
    import shutil

    from assets import dbt_translator

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_translator.DBT_PROJECT_DIR / "macros", project / "macros")
    monkeypatch.setattr(dbt_translator, "DBT_PROJECT_DIR", project)
    for cached in (dbt_translator._project_macros, dbt_translator.macros_digest):
        cached.cache_clear()
    before = dbt_translator.macros_digest(("point_in_time_features",))
    unrelated = dbt_translator.macros_digest(("in_window",))
    window = project / "macros" / "as_of_window.sql"  # called by point_in_time_features, not by the model
    window.write_text(window.read_text().replace("1 microsecond", "1 second"))
    for cached in (dbt_translator._project_macros, dbt_translator.macros_digest):
        cached.cache_clear()
    assert dbt_translator.macros_digest(("point_in_time_features",)) != before
    assert dbt_translator.macros_digest(("in_window",)) == unrelated  # does not call as_of_window
    for cached in (dbt_translator._project_macros, dbt_translator.macros_digest):
        cached.cache_clear()
