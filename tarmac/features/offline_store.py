"""The offline store: any flight's features as of any time (a feature store's historical retrieval).

Nothing here computes a feature. The dbt macro `point_in_time_features` that builds
gold.flight_features is also called by the dbt analysis of the same name, which `make manifest`
compiles into SQL without dates; this module runs that SQL on a read-only connection to the
warehouse with the requested (flight, as-of time) pairs as the table `pit_targets`. So the training
set at the default horizon is gold.training_set, and any other horizon is one call away.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import yaml

from tarmac.dbt_project import compiled_analysis
from tarmac.paths import DBT_PROJECT_DIR, TarmacPaths
from tarmac.warehouse import read_only


def default_horizon_minutes() -> int:
    """The dbt var behind gold's prediction_ts = sched_dep_ts - horizon."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return int(project["vars"]["prediction_horizon_minutes"])


@dataclass(frozen=True)
class OfflineStore:
    """Point-in-time reads of the warehouse in `paths` (TARMAC_DATA_DIR by default), read-only."""

    paths: TarmacPaths = field(default_factory=TarmacPaths.from_env)

    def get_historical_features(self, entities: pd.DataFrame) -> pd.DataFrame:
        """gold.flight_features' columns for each row of `entities` (flight_id, as_of_ts: tz-aware),
        in the same order, computed as of as_of_ts: events at or before it only, windows
        (as_of_ts - w, as_of_ts]. prediction_ts is the as-of time."""
        requests = _requests(entities)
        with self._connect() as con:
            con.register("requested", requests[["flight_id"]].drop_duplicates())
            unknown = [i for (i,) in con.execute(
                "select flight_id from requested anti join silver.flights using (flight_id) order by 1"
            ).fetchall()]  # fmt: skip
            if unknown:
                raise LookupError(
                    f"{len(unknown)} requested flight ids are not in silver.flights (first: "
                    f"{', '.join(unknown[:5])}); ids look like UA-1545-EWR-20130101, and their days "
                    "must be materialized (make backfill START=.. END=..)"
                )
            return self._retrieve(con, requests).drop(columns="is_delayed")

    def training_set(self, start_day: str, end_day: str, horizon_minutes: int | None = None) -> pd.DataFrame:
        """Features plus is_delayed of the labelled flights of the local days start..end, as of
        sched_dep_ts - horizon (the dbt var by default: then it equals gold.training_set)."""
        horizon = default_horizon_minutes() if horizon_minutes is None else horizon_minutes
        with self._connect() as con:
            flights = con.execute(
                "select flight_id, sched_dep_ts from silver.flights where flight_date between ? and ? "
                "order by flight_date, flight_id",
                [start_day, end_day],
            ).df()
            requests = pd.DataFrame(
                {"flight_id": flights["flight_id"], "as_of_ts": flights["sched_dep_ts"] - pd.Timedelta(minutes=horizon)}
            )
            features = self._retrieve(con, requests)
        # cancelled and diverted flights have no label: scored, never trained on
        # (docs/design.md#features)
        labelled = features[features["is_delayed"].notna()].reset_index(drop=True)
        return labelled.astype({"is_delayed": bool})

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with read_only(self.paths.warehouse) as con:
            # as dbt's profile: day-long windows and dates of timestamps are taken in UTC
            con.execute("set TimeZone = 'UTC'")
            yield con

    @staticmethod
    def _retrieve(con: duckdb.DuckDBPyConnection, requests: pd.DataFrame) -> pd.DataFrame:
        """The analysis's rows in request order. Its windows are keyed by flight, so a flight asked
        for at several times is answered in as many passes, one time per flight per pass."""
        sql = compiled_analysis("point_in_time_features")
        occurrence = requests.groupby("flight_id").cumcount()
        batches = [batch for _, batch in requests.groupby(occurrence)] or [requests]
        parts = []
        for batch in batches:
            con.register("pit_targets", batch)
            rows = con.execute(sql).df()
            parts.append(batch[["flight_id"]].reset_index().merge(rows, on="flight_id").set_index("index"))
        return pd.concat(parts).sort_index().reset_index(drop=True)


def _requests(entities: pd.DataFrame) -> pd.DataFrame:
    """(flight_id, as_of_ts in UTC), indexed 0..n-1; refuses what as-of semantics cannot answer."""
    missing = {"flight_id", "as_of_ts"} - set(entities.columns)
    if missing:
        raise ValueError(f"entities lack the column(s) {', '.join(sorted(missing))}: expected flight_id and as_of_ts")
    as_of = pd.to_datetime(entities["as_of_ts"])
    if as_of.dt.tz is None:
        raise ValueError(
            "as_of_ts is naive: an as-of time must be an instant; localize it first, "
            "e.g. entities.as_of_ts.dt.tz_localize('UTC') (or 'America/New_York' for local times)"
        )
    unset = entities["flight_id"].isna() | as_of.isna()
    if unset.any():
        rows = list(entities.index[unset][:5])
        raise ValueError(f"{int(unset.sum())} entities have no flight_id or no as_of_ts (first rows: {rows})")
    requests = pd.DataFrame({"flight_id": entities["flight_id"], "as_of_ts": as_of.dt.tz_convert("UTC")})
    return requests.reset_index(drop=True)
