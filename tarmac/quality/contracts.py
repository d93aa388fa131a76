"""Pandera contracts: one DataFrameModel per warehouse table, validated in DuckDB through ibis.

Each model is the source of truth for its table's column names, types, nullability and domain
ranges: the schema checks validate partitions against it (never pulling a table into pandas), and
the assets' column schema metadata in the UI is rendered from it. Silver's domain bounds are the
dbt project's `value_bounds` var, read here, so the rule that nulls an impossible value and the
contract that forbids it are the same numbers. Gold's feature columns are generated from the feature
registry (`tarmac/features/registry.py`), so a feature's type, nullability and range are declared once.

Bronze keeps landed values as text; its contract says which text each field must hold (an integer,
a decimal, a UTC timestamp, NA), so a string in a numeric column is found in the raw layer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import dagster as dg
import ibis.expr.datatypes as dt
import pandera.ibis as pa
import yaml

from tarmac.features.registry import FeatureDefinition, FeatureRegistryError, feature_registry
from tarmac.paths import DBT_PROJECT_DIR

UTC = dt.Timestamp(timezone="UTC", scale=6)

# What a landed field may hold, as text. NA and the empty string are "no value" upstream.
INTEGER = r"^(-?\d+|NA|)$"
DECIMAL = r"^(-?\d+(\.\d+)?([eE]-?\d+)?|NA|)$"
UTC_TIME = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z|NA|)$"
CODE = r"^[A-Za-z0-9]+$"

LANDING_FIELDS: dict[str, dict[str, str | None]] = {
    "flights": {
        "year": INTEGER, "month": INTEGER, "day": INTEGER, "dep_time": INTEGER,
        "sched_dep_time": INTEGER, "dep_delay": INTEGER, "arr_time": INTEGER,
        "sched_arr_time": INTEGER, "arr_delay": INTEGER, "carrier": CODE, "flight": INTEGER,
        "tailnum": None, "origin": CODE, "dest": CODE, "air_time": INTEGER, "distance": INTEGER,
        "hour": INTEGER, "minute": INTEGER, "time_hour": UTC_TIME,
    },
    "weather": {
        "origin": CODE, "year": INTEGER, "month": INTEGER, "day": INTEGER, "hour": INTEGER,
        "temp": DECIMAL, "dewp": DECIMAL, "humid": DECIMAL, "wind_dir": DECIMAL,
        "wind_speed": DECIMAL, "wind_gust": DECIMAL, "precip": DECIMAL, "pressure": DECIMAL,
        "visib": DECIMAL, "time_hour": UTC_TIME,
    },
    "planes": {"tailnum": None, "year": INTEGER, "type": None, "manufacturer": None, "model": None,
               "engines": INTEGER, "seats": INTEGER, "speed": INTEGER, "engine": None},
    "airports": {"faa": None, "name": None, "lat": DECIMAL, "lon": DECIMAL, "alt": INTEGER,
                 "tz": INTEGER, "dst": None, "tzone": None},
    "airlines": {"carrier": None, "name": None},
}


@cache
def value_bounds() -> dict[str, dict[str, list[float]]]:
    """Silver's domain bounds, from the dbt project's vars (the rule silver applies)."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]["value_bounds"]


def _bounded(dataset: str, column: str, **kwargs: Any) -> Any:
    low, high = value_bounds()[dataset][column]
    return pa.Field(ge=low, le=high, nullable=True, **kwargs)


class _Contract(pa.DataFrameModel):
    class Config:
        strict = True  # a dropped or unexpected column fails the contract
        coerce = False


# Bronze lineage columns follow the landed ones, in the table's order.
_BRONZE_LINEAGE: dict[str, tuple[Any, dict[str, Any]]] = {
    "parse_error": (dt.String, {"nullable": True, "isin": []}),  # every malformed line is a failure
    "raw_line": (dt.String, {}),
    "source_file": (dt.String, {}),
    "file_checksum": (dt.String, {"str_matches": r"^[0-9a-f]{32}$"}),
    "source_line_number": (dt.Int64, {"ge": 2}),
    "load_id": (dt.String, {}),
    "ingested_at": (UTC, {}),
}


def _bronze_contract(dataset: str, partitioned: bool) -> type[pa.DataFrameModel]:
    annotations: dict[str, Any] = {"landing_date": dt.Date} if partitioned else {}
    fields: dict[str, Any] = {"landing_date": pa.Field()} if partitioned else {}
    for column, pattern in LANDING_FIELDS[dataset].items():
        annotations[column] = dt.String
        fields[column] = pa.Field(nullable=True, **({"str_matches": pattern} if pattern else {}))
    for column, (dtype, options) in _BRONZE_LINEAGE.items():
        annotations[column] = dtype
        fields[column] = pa.Field(**options)
    return type(f"Bronze{dataset.title()}", (_Contract,), {"__annotations__": annotations, **fields})


class SilverFlights(_Contract):
    flight_id: dt.String = pa.Field(unique=True, str_matches=r"^[A-Z0-9]+-\d+-(EWR|JFK|LGA)-\d{8}$")
    flight_date: dt.Date
    year: dt.Int32
    month: dt.Int32 = pa.Field(ge=1, le=12)
    day: dt.Int32 = pa.Field(ge=1, le=31)
    carrier: dt.String
    flight: dt.Int32 = pa.Field(ge=1)
    tailnum: dt.String = pa.Field(nullable=True)
    origin: dt.String = pa.Field(isin=["EWR", "JFK", "LGA"])
    dest: dt.String
    hour: dt.Int32 = pa.Field(ge=0, le=23)
    minute: dt.Int32 = pa.Field(ge=0, le=59)
    sched_dep_time: dt.Int32 = pa.Field(ge=0, le=2359)
    sched_dep_minute_local: dt.Int32 = pa.Field(ge=0, lt=1440)
    dep_time: dt.Int32 = pa.Field(ge=0, le=2400, nullable=True)
    dep_minute_local: dt.Int32 = pa.Field(ge=0, le=1440, nullable=True)
    arr_time: dt.Int32 = pa.Field(ge=0, le=2400, nullable=True)
    sched_arr_time: dt.Int32 = pa.Field(ge=0, le=2400, nullable=True)
    dep_delay: dt.Int32 = _bounded("flights", "dep_delay")
    arr_delay: dt.Int32 = _bounded("flights", "arr_delay")
    air_time: dt.Int32 = _bounded("flights", "air_time")
    distance: dt.Int32 = _bounded("flights", "distance")
    cancelled: dt.Boolean
    sched_dep_ts: UTC
    dep_ts: UTC = pa.Field(nullable=True)
    source_file: dt.String
    source_line_number: dt.Int64 = pa.Field(ge=2)
    file_checksum: dt.String
    load_id: dt.String
    loaded_at: UTC


class SilverWeather(_Contract):
    origin: dt.String = pa.Field(isin=["EWR", "JFK", "LGA"])
    obs_ts: UTC
    obs_date: dt.Date
    obs_hour_local: dt.Int32 = pa.Field(ge=0, le=23)
    temp: dt.Float64 = _bounded("weather", "temp")
    dewp: dt.Float64 = _bounded("weather", "dewp")
    humid: dt.Float64 = _bounded("weather", "humid")
    wind_dir: dt.Float64 = _bounded("weather", "wind_dir")
    wind_speed: dt.Float64 = _bounded("weather", "wind_speed")
    wind_gust: dt.Float64 = _bounded("weather", "wind_gust")
    precip: dt.Float64 = _bounded("weather", "precip")
    pressure: dt.Float64 = _bounded("weather", "pressure")
    visib: dt.Float64 = _bounded("weather", "visib")
    source_file: dt.String
    source_line_number: dt.Int64 = pa.Field(ge=2)
    file_checksum: dt.String
    load_id: dt.String
    loaded_at: UTC


class SilverQuarantine(_Contract):
    landing_date: dt.Date
    dataset: dt.String = pa.Field(isin=["flights", "weather"])
    action: dt.String = pa.Field(isin=["row_quarantined", "value_nulled"])
    rule: dt.String
    reason: dt.String
    column_name: dt.String = pa.Field(nullable=True)
    original_value: dt.String = pa.Field(nullable=True)
    source_file: dt.String
    source_line_number: dt.Int64 = pa.Field(ge=1)
    file_checksum: dt.String
    raw_payload: dt.String = pa.Field(nullable=True)
    load_id: dt.String
    quarantined_at: UTC


class SilverLoadAudit(_Contract):
    landing_date: dt.Date
    dataset: dt.String = pa.Field(isin=["flights", "weather"])
    bronze_rows: dt.Int64 = pa.Field(ge=0)
    silver_rows: dt.Int64 = pa.Field(ge=0)
    quarantined_rows: dt.Int64 = pa.Field(ge=0)
    duplicates_dropped: dt.Int64 = pa.Field(ge=0)
    values_nulled: dt.Int64 = pa.Field(ge=0)
    audited_at: UTC


class _Reference(_Contract):
    source_file: dt.String
    source_line_number: dt.Int64 = pa.Field(ge=2)
    file_checksum: dt.String
    load_id: dt.String


class SilverPlanes(_Reference):
    tailnum: dt.String = pa.Field(unique=True)
    year: dt.Int32 = pa.Field(ge=1900, le=2014, nullable=True)
    type: dt.String = pa.Field(nullable=True)
    manufacturer: dt.String = pa.Field(nullable=True)
    model: dt.String = pa.Field(nullable=True)
    engines: dt.Int32 = pa.Field(ge=0, le=8, nullable=True)
    seats: dt.Int32 = pa.Field(ge=1, le=1000, nullable=True)
    speed: dt.Int32 = pa.Field(ge=0, nullable=True)
    engine: dt.String = pa.Field(nullable=True)


class SilverAirports(_Reference):
    faa: dt.String = pa.Field(unique=True)
    name: dt.String = pa.Field(nullable=True)
    lat: dt.Float64 = pa.Field(ge=-90, le=90, nullable=True)
    lon: dt.Float64 = pa.Field(ge=-180, le=180, nullable=True)
    alt_ft: dt.Int32 = pa.Field(nullable=True)
    utc_offset_hours: dt.Int32 = pa.Field(ge=-12, le=14, nullable=True)
    dst: dt.String = pa.Field(nullable=True)
    tzone: dt.String = pa.Field(nullable=True)


class SilverAirlines(_Reference):
    carrier: dt.String = pa.Field(unique=True)
    name: dt.String = pa.Field(nullable=True)


class SilverReferenceQuarantine(_Contract):
    dataset: dt.String = pa.Field(isin=["planes", "airports", "airlines"])
    rule: dt.String
    reason: dt.String
    source_file: dt.String
    source_line_number: dt.Int64 = pa.Field(ge=1)
    file_checksum: dt.String
    raw_payload: dt.String = pa.Field(nullable=True)
    load_id: dt.String


# the ibis type of each dbt data_type the feature registry allows
_FEATURE_TYPES: dict[str, Any] = {"double": dt.Float64, "bigint": dt.Int64, "integer": dt.Int32, "varchar": dt.String}


def feature_bounds(feature: FeatureDefinition) -> tuple[float | None, float | None]:
    """A feature's [low, high] (None: open), a "dataset.column" reference resolved to silver's bounds."""
    if isinstance(feature.bounds, str):
        dataset, column = feature.bounds.split(".")
        if column not in value_bounds().get(dataset, {}):
            raise FeatureRegistryError(f"feature {feature.name!r}, field 'bounds': {feature.bounds} is not in the value_bounds dbt var")
        low, high = value_bounds()[dataset][column]
        return low, high
    return feature.bounds if isinstance(feature.bounds, tuple) else (None, None)


def _feature_field(feature: FeatureDefinition) -> Any:
    checks: dict[str, Any] = {"isin": list(feature.isin)} if feature.isin else {}
    low, high = feature_bounds(feature)
    checks.update({k: v for k, v in (("ge", low), ("le", high)) if v is not None})
    return pa.Field(nullable=feature.nullable, **checks)


def _gold_features_contract() -> type[pa.DataFrameModel]:
    """gold.flight_features: identity and lineage columns here, the features from the registry."""
    identity = {"flight_id": (dt.String, pa.Field(unique=True)), "flight_date": (dt.Date, pa.Field()),
                "sched_dep_ts": (UTC, pa.Field()), "prediction_ts": (UTC, pa.Field())}
    features = {n: (_FEATURE_TYPES[f.dtype], _feature_field(f)) for n, f in feature_registry().items()}
    lineage = {"load_id": (dt.String, pa.Field()), "computed_at": (UTC, pa.Field())}
    columns = {**identity, **features, **lineage}  # the table's column order
    return type("GoldFlightFeatures", (_Contract,), {
        "__annotations__": {n: dtype for n, (dtype, _) in columns.items()},
        **{n: field for n, (_, field) in columns.items()},
    })


GoldFlightFeatures = _gold_features_contract()


class GoldTrainingSet(GoldFlightFeatures):
    is_delayed: dt.Boolean


class GoldPredictions(_Contract):
    """Batch scores: one row per flight of the day, with the model version that scored it."""

    flight_id: dt.String = pa.Field(unique=True)
    flight_date: dt.Date
    prediction_ts: UTC
    delay_probability: dt.Float64 = pa.Field(ge=0, le=1)
    model_name: dt.String
    model_version: dt.String = pa.Field(str_matches=r"^\d+$")
    load_id: dt.String
    scored_at: UTC


CONTRACTS: dict[dg.AssetKey, type[pa.DataFrameModel]] = {
    dg.AssetKey(["bronze", "flights"]): _bronze_contract("flights", partitioned=True),
    dg.AssetKey(["bronze", "weather"]): _bronze_contract("weather", partitioned=True),
    dg.AssetKey(["bronze", "planes"]): _bronze_contract("planes", partitioned=False),
    dg.AssetKey(["bronze", "airports"]): _bronze_contract("airports", partitioned=False),
    dg.AssetKey(["bronze", "airlines"]): _bronze_contract("airlines", partitioned=False),
    dg.AssetKey(["silver", "flights"]): SilverFlights,
    dg.AssetKey(["silver", "weather"]): SilverWeather,
    dg.AssetKey(["silver", "quarantine"]): SilverQuarantine,
    dg.AssetKey(["silver", "load_audit"]): SilverLoadAudit,
    dg.AssetKey(["silver", "planes"]): SilverPlanes,
    dg.AssetKey(["silver", "airports"]): SilverAirports,
    dg.AssetKey(["silver", "airlines"]): SilverAirlines,
    dg.AssetKey(["silver", "reference_quarantine"]): SilverReferenceQuarantine,
    dg.AssetKey(["gold", "flight_features"]): GoldFlightFeatures,
    dg.AssetKey(["gold", "training_set"]): GoldTrainingSet,
    dg.AssetKey(["gold", "predictions"]): GoldPredictions,
}


def column_schema(
    key: dg.AssetKey, descriptions: dict[str, str | None], tags: dict[str, dict[str, str]] | None = None
) -> dg.TableSchema | None:
    """The asset's column schema for the UI, rendered from its contract (descriptions from dbt,
    and tags per column: a feature's version, entity, window and owner)."""
    contract = CONTRACTS.get(key)
    if contract is None:
        return None
    columns = []
    for name, column in contract.to_schema().columns.items():
        checks = [c.error or c.name for c in column.checks]
        columns.append(
            dg.TableColumn(
                name=name,
                type=str(column.dtype),
                description=descriptions.get(name),
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable, unique=column.unique, other=checks
                ),
                tags=(tags or {}).get(name),
            )
        )
    return dg.TableSchema(columns=columns)
