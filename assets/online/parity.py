"""Training/serving parity: flights replayed through the online path and compared with gold.

For sampled flights, the events before their prediction times are streamed through the speed layer
into an online store, in event-time order, stopping at each flight's prediction_ts to read its
vector exactly as the serving API does. Each feature must equal gold's: strings and integers
exactly, floats within a tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from assets.ml.feature_registry import FeatureDefinition, feature_registry
from assets.online.batch import FLIGHT_ATTRIBUTES, plane_records
from assets.online.events import Event, from_us, silver_events, to_us
from assets.online.retrieval import PLANE, OnlineFeatures
from assets.online.speed_layer import SpeedLayer
from assets.online.store import OnlineStore

def plain(value: Any) -> Any:
    """A warehouse value as plain Python: NULL, NaN and NA are None; numpy scalars are unboxed."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def differs(online: Any, batch: Any, tolerance: float) -> bool:
    online, batch = plain(online), plain(batch)
    if online is None or batch is None:
        return (online is None) != (batch is None)
    if isinstance(online, float) or isinstance(batch, float):
        return not abs(float(online) - float(batch)) <= tolerance
    return online != batch


@dataclass
class ParityResult:
    flights: int = 0
    mismatched_flights: int = 0
    events: int = 0
    by_feature: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mismatch_rate(self) -> float:
        return self.mismatched_flights / self.flights if self.flights else 0.0


def flight_records(con: duckdb.DuckDBPyConnection, flight_ids: Sequence[str]) -> pd.DataFrame:
    """Gold's rows of the flights (features under their names, prediction_ts) beside the flights'
    silver attributes (as attr_<column>), by prediction time."""
    con.execute("set TimeZone = 'UTC'")
    con.register("parity_ids", pd.DataFrame({"flight_id": list(flight_ids)}))
    features = ", ".join(f"g.{name}" for name in feature_registry())
    attributes = ", ".join(f"f.{c} as attr_{c}" for c in FLIGHT_ATTRIBUTES)
    try:
        return con.execute(f"""
            select g.flight_id, g.prediction_ts, {features}, {attributes}
            from parity_ids join silver.flights f using (flight_id) join gold.flight_features g using (flight_id)
            order by g.prediction_ts, g.flight_id
        """).df()
    finally:
        con.unregister("parity_ids")


def record_of(row: Mapping[str, Any]) -> dict[str, Any]:
    record = {c: plain(row[f"attr_{c}"]) for c in FLIGHT_ATTRIBUTES}
    record["flight_date"] = str(record["flight_date"])[:10]
    return record


def replay_and_compare(
    flights: pd.DataFrame,
    events: Sequence[Event],
    store: OnlineStore,
    tolerance: float,
    registry: Mapping[str, FeatureDefinition] | None = None,
    max_examples: int = 20,
) -> ParityResult:
    """Stream `events` (in event-time order, covering the longest window before the first flight's
    prediction_ts) through a speed layer into `store`, stopping at each flight's prediction_ts to
    read its features online and compare them with the row's (gold's) values."""
    registry = feature_registry() if registry is None else registry
    layer, reader = SpeedLayer(registry), OnlineFeatures(store, registry)
    result = ParityResult()
    if flights.empty:
        return result
    flights = flights.sort_values(["prediction_ts", "flight_id"], kind="stable")
    first = to_us(flights["prediction_ts"].iloc[0])
    store.begin_stream(first - reader.max_window_us)
    position = 0
    for row in flights.to_dict("records"):
        at = to_us(row["prediction_ts"])
        while position < len(events) and events[position].ts_us <= at:
            layer.apply(events[position])
            position += 1
        layer.advance_to(at)
        store.write(layer.drain(), at)
        online = reader.for_flight(record_of(row), at)
        wrong = [name for name in registry if differs(online[name], row[name], tolerance)]
        result.flights += 1
        if wrong:
            result.mismatched_flights += 1
            for name in wrong:
                result.by_feature[name] = result.by_feature.get(name, 0) + 1
            if len(result.examples) < max_examples:
                result.examples.append({"flight_id": row["flight_id"], "as_of": from_us(at).isoformat(),
                                        **{n: {"online": plain(online[n]), "gold": plain(row[n])} for n in wrong}})
    result.events = position
    return result


def parity_for_flights(con: duckdb.DuckDBPyConnection, flight_ids: Sequence[str], store: OnlineStore,
                       tolerance: float) -> ParityResult:
    """Replay silver's events through the online path for these flights and compare with gold.
    The store is a scratch one: its histories are rebuilt and its planes replaced."""
    flights = flight_records(con, flight_ids)
    if flights.empty:
        return ParityResult()
    store.put_records(PLANE, plane_records(con))
    max_window = pd.Timedelta(microseconds=OnlineFeatures(store).max_window_us)
    start = flights["prediction_ts"].min() - max_window
    events = silver_events(con, start, flights["prediction_ts"].max())
    return replay_and_compare(flights, events, store, tolerance)
