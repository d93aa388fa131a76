"""The online group: what the online store takes from the warehouse in batch.

`online/planes` and `online/flights` copy the planes and each day's flights (attributes and
gold's batch-computed features) into the configured online store; the serving API looks flights up
there. The speed layer writes the rolling windows beside them. Both assets read the warehouse
read-only, inside its pool, and rewrite what they load as a whole (per day for flights)."""

from datetime import date, timedelta

import dagster as dg

from assets.partitions import daily_partitions
from resources.online_store import OnlineStoreResource
from resources.warehouse import WarehouseResource
from tarmac.days import days_between
from tarmac.online.batch import flight_record_json, plane_records
from tarmac.online.retrieval import FLIGHT, PLANE
from tarmac.warehouse import WAREHOUSE_POOL

ONLINE_GROUP = "online"
ONLINE_FLIGHTS_KEY = dg.AssetKey(["online", "flights"])
ONLINE_PLANES_KEY = dg.AssetKey(["online", "planes"])


def _store_metadata(store) -> dict[str, dg.MetadataValue]:
    where = store.prefix if store.backend == "redis" else str(store.path)
    return {"store": dg.MetadataValue.text(f"{store.backend}: {where}")}


@dg.asset(
    key=ONLINE_PLANES_KEY,
    deps=[dg.AssetKey(["silver", "planes"])],
    group_name=ONLINE_GROUP,
    kinds={"python"},
    pool=WAREHOUSE_POOL,
    owners=["team:ml-features"],
)
def online_planes(warehouse: WarehouseResource, online_store: OnlineStoreResource) -> dg.MaterializeResult:
    """silver.planes in the online store, by tail number: what plane features are served from."""
    with warehouse.reader() as con:
        planes = plane_records(con)
    store = online_store.open()
    try:
        store.put_records(PLANE, planes, group="all")
        return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(len(planes)),
                                              **_store_metadata(store)})
    finally:
        store.close()


@dg.asset(
    key=ONLINE_FLIGHTS_KEY,
    deps=[dg.AssetKey(["gold", "flight_features"]), dg.AssetKey(["silver", "flights"])],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=ONLINE_GROUP,
    kinds={"python"},
    pool=WAREHOUSE_POOL,
    owners=["team:ml-features"],
)
def online_flight_features(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, online_store: OnlineStoreResource
) -> dg.MaterializeResult:
    """Each flight of the run's days in the online store: its attributes (the schedule the API
    looks flights up in) and gold's feature vector, keyed by flight_id and replaced per day."""
    start, end = (moment.date().isoformat() for moment in context.partition_time_window)
    last = (date.fromisoformat(end) - timedelta(days=1)).isoformat()  # the window ends before `end`
    days = days_between(start, last)
    store = online_store.open()
    loaded = 0
    try:
        # a day at a time: memory holds one day's records, whatever the window (a year at SF=10
        # held at once took over 9 GB)
        with warehouse.reader() as con:
            for day in days:
                next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
                records = flight_record_json(con, day, next_day)
                store.put_record_json(FLIGHT, records, group=day)
                loaded += len(records)
                # each day's materialization carries that day's count
                context.add_asset_metadata({"dagster/row_count": dg.MetadataValue.int(len(records))}, partition_key=day)
        metadata = {"tarmac/window": dg.MetadataValue.text(f"[{start}, {end})"),
                    "tarmac/window_row_count": dg.MetadataValue.int(loaded), **_store_metadata(store)}
        context.log.info(f"{loaded} flights of [{start}, {end}) in the online store")
        return dg.MaterializeResult(metadata=metadata)
    finally:
        store.close()

