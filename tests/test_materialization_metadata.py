"""What a day's materialization says in the UI is that day's: its row count (`dagster/row_count`,
which the asset graph shows on the node), not the run's, even when one run built a month."""

from __future__ import annotations

import dagster as dg
import pytest

from tarmac.days import days_between
from tarmac.warehouse import PARTITION_COLUMNS
from tests.conftest import Materialized

DAYS = days_between("2013-03-04", "2013-03-13")  # inside the shared days' one run of 02-11..03-13


@pytest.mark.pipeline
def test_each_days_materialization_carries_that_days_row_count(real_days: Materialized):
    instance = real_days.instance
    for (layer, table), column in PARTITION_COLUMNS.items():
        key = dg.AssetKey([layer, table])
        if key == dg.AssetKey(["gold", "predictions"]):
            continue  # never scored without a champion (tests/test_model.py scores)
        rows = dict(real_days.query(
            f"select {column}::varchar, count(*) from {layer}.{table} where {column} between ? and ? group by 1",
            [DAYS[0], DAYS[-1]],
        ))
        shown = {}
        for day in DAYS:
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
            ).records
            materialization = record.asset_materialization
            shown[day] = materialization.metadata["dagster/row_count"].value
            assert materialization.partition == day
        assert shown == {day: rows.get(day, 0) for day in DAYS}, key.to_user_string()
        window_total = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[DAYS[0]]), limit=1
        ).records[0].asset_materialization.metadata.get("tarmac/window_row_count")
        if key.path[1] in ("flights", "flight_features"):  # a day is a small part of the month's run
            assert window_total is not None and window_total.value > 20 * max(shown.values()), key
