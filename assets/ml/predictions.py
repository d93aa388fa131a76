"""`gold/predictions`: every flight of a day scored by the champion, with its model version per row.

Daily partitioned like the features it scores and rewritten per partition (on DuckDB the window
deleted and inserted in one transaction; on Spark the days' Parquet partitions replaced), so a
re-run or a range run gives the same rows. Scores are computed
from gold.flight_features, every flight including those whose label will never be known.

Until a model holds the champion alias (a fresh instance, a week of data: too little to train on),
a run scores nothing and writes nothing: it logs why and records each of its days as *not scored*
(a materialization whose data version is `NOT_SCORED`, with the reason), so the run succeeds, an
asset backfill that targets the days completes successfully, and the predictions' checks report
each such day as a warning that says why instead of judging scores that do not exist.
`batch_scoring_sensor` scores these days once a champion exists.
"""


from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from assets.ml.model import ML_GROUP, MODEL_KEY, ml_code_version
from assets.partitions import daily_partitions
from resources.config import TarmacConfig
from resources.model_registry import ModelRegistryResource
from resources.warehouse import WarehouseResource
from tarmac.quality.contracts import column_schema
from tarmac.spark import engine
from tarmac.warehouse import WAREHOUSE_POOL

PREDICTIONS_KEY = dg.AssetKey(["gold", "predictions"])
FEATURES_KEY = dg.AssetKey(["gold", "flight_features"])
NOT_SCORED = "not-scored"  # the data version of a day recorded without scores

DDL = """
create schema if not exists gold;
create table if not exists gold.predictions (
    flight_id varchar not null,
    flight_date date not null,
    prediction_ts timestamp with time zone not null,
    delay_probability double not null,
    model_name varchar not null,
    model_version varchar not null,
    load_id varchar not null,
    scored_at timestamp with time zone not null
);
"""


@dg.asset(
    key=PREDICTIONS_KEY,
    deps=[FEATURES_KEY, MODEL_KEY],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=ML_GROUP,
    kinds={engine(), "mlflow"},  # where the scores are written: the engine's gold
    code_version=ml_code_version(),
    pool=WAREHOUSE_POOL,
    owners=["team:ml-features"],
    metadata={"dagster/column_schema": column_schema(PREDICTIONS_KEY, {})},
)
def predictions(
    context: dg.AssetExecutionContext,
    tarmac: TarmacConfig,
    warehouse: WarehouseResource,
    model_registry: ModelRegistryResource,
) -> Iterator[dg.MaterializeResult]:
    """Batch scores of the champion model for the run's days."""
    from tarmac.ml.training import delay_probability, model_features  # scikit-learn: a scoring step's cost

    settings = tarmac.settings.ml
    start, end = (moment.date().isoformat() for moment in context.partition_time_window)
    registry = model_registry.open()
    champion = registry.champion()
    if champion is None:
        yield _not_scored(context, settings.model_name, start, end)
        return
    model = registry.load(champion.version)
    columns = ", ".join(["flight_id", "flight_date", "prediction_ts", *model_features()])
    with warehouse.reader() as con:
        frame = con.execute(
            f"select {columns} from gold.flight_features where flight_date >= ? and flight_date < ? order by flight_id",
            [start, end],
        ).df()
    scored = frame[["flight_id", "flight_date", "prediction_ts"]].copy()
    scored["delay_probability"] = delay_probability(model, frame) if len(frame) else []
    scored["model_name"] = settings.model_name
    scored["model_version"] = champion.version
    scored["load_id"] = context.run.run_id
    scored["scored_at"] = datetime.now(UTC)
    # the run's days rewritten whole, where the engine keeps gold: published, or undone
    warehouse.replace_days("gold", "predictions", DDL, scored, "flight_date", context.partition_keys, context.log.warning)
    context.log.info(f"scored {len(scored)} flights of [{start}, {end}) with {settings.model_name} v{champion.version}")
    metadata = {
        "model_version": dg.MetadataValue.text(champion.version),
        "tarmac/window": dg.MetadataValue.text(f"[{start}, {end})"),
        "tarmac/window_row_count": dg.MetadataValue.int(len(scored)),
        "mean_delay_probability": dg.MetadataValue.float(float(scored["delay_probability"].mean()) if len(scored) else 0.0),
    }
    per_day = scored["flight_date"].astype(str).str[:10].value_counts()
    for day in context.partition_keys:  # each day's materialization carries that day's count
        context.add_asset_metadata({"dagster/row_count": dg.MetadataValue.int(int(per_day.get(day, 0)))}, partition_key=day)
    yield dg.MaterializeResult(metadata=metadata)


def not_scored_reason(model_name: str) -> str:
    return (
        f"no version of {model_name} holds the champion alias yet; materialize {MODEL_KEY.to_user_string()} "
        "(make backfill does once every day of its split has a training set); "
        "the batch scoring sensor scores these days once a champion exists"
    )


def _not_scored(context: dg.AssetExecutionContext, model_name: str, start: str, end: str) -> dg.MaterializeResult:
    """Log why, and record each day of the run as not scored; the warehouse is not touched."""
    reason = not_scored_reason(model_name)
    context.log.info(f"not scored [{start}, {end}): {reason}")
    return dg.MaterializeResult(
        metadata={
            "tarmac/scored": dg.MetadataValue.bool(False),
            "tarmac/not_scored": dg.MetadataValue.text(reason),
            "tarmac/window": dg.MetadataValue.text(f"[{start}, {end})"),
        },
        data_version=dg.DataVersion(NOT_SCORED),
    )


def not_scored_days(instance: dg.DagsterInstance) -> set[str]:
    """The days whose latest gold/predictions materialization recorded them as not scored."""
    latest = instance.event_log_storage.get_latest_tags_by_partition(
        PREDICTIONS_KEY, dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG]
    )
    return {day for day, tags in latest.items() if tags.get(DATA_VERSION_TAG) == NOT_SCORED}
