"""`gold/predictions`: every flight of a day scored by the champion, with its model version per row.

Daily partitioned like the features it scores and rewritten per partition (delete the window, then
insert, in one transaction), so a re-run or a range run gives the same rows. Scores are computed
from gold.flight_features, every flight including those whose label will never be known.
"""


from datetime import date, datetime, timedelta, timezone

import dagster as dg
import duckdb

from assets.ml.model import MODEL_KEY, ml_code_version
from assets.partitions import daily_partitions
from assets.quality.contracts import column_schema
from resources.quality_settings import load_settings
from resources.settings import TarmacPaths
from resources.warehouse import WAREHOUSE_POOL

PREDICTIONS_KEY = dg.AssetKey(["gold", "predictions"])
FEATURES_KEY = dg.AssetKey(["gold", "flight_features"])

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


class NoChampionError(dg.Failure):
    pass


@dg.asset(
    key=PREDICTIONS_KEY,
    deps=[FEATURES_KEY, MODEL_KEY],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ml",
    kinds={"duckdb", "mlflow"},
    code_version=ml_code_version(),
    pool=WAREHOUSE_POOL,
    owners=["team:ml-features"],
    metadata={"dagster/column_schema": column_schema(PREDICTIONS_KEY, {})},
)
def predictions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Batch scores of the champion model for the run's days."""
    from assets.ml.model_registry import ModelRegistry
    from assets.ml.training import delay_probability, model_features

    settings = load_settings().ml
    paths = TarmacPaths.from_env()
    start, end = (moment.date().isoformat() for moment in context.partition_time_window)
    registry = ModelRegistry.from_settings(paths)
    champion = registry.champion()
    if champion is None:
        raise NoChampionError(
            description=f"no version of {settings.model_name} holds the champion alias yet: "
            f"materialize {MODEL_KEY.to_user_string()} first (make backfill does)"
        )
    model = registry.load(champion.version)
    columns = ", ".join(["flight_id", "flight_date", "prediction_ts", *model_features()])
    with duckdb.connect(str(paths.warehouse)) as con:
        frame = con.execute(
            f"select {columns} from gold.flight_features where flight_date >= ? and flight_date < ? order by flight_id",
            [start, end],
        ).df()
        scored = frame[["flight_id", "flight_date", "prediction_ts"]].copy()
        scored["delay_probability"] = delay_probability(model, frame) if len(frame) else []
        scored["model_name"] = settings.model_name
        scored["model_version"] = champion.version
        scored["load_id"] = context.run.run_id
        scored["scored_at"] = datetime.now(timezone.utc)
        con.execute(DDL)
        con.execute("begin transaction")
        con.execute("delete from gold.predictions where flight_date >= ? and flight_date < ?", [start, end])
        con.register("scored", scored)
        con.execute("insert into gold.predictions by name select * from scored")
        con.unregister("scored")
        con.execute("commit")
    context.log.info(f"scored {len(scored)} flights of [{start}, {end}) with {settings.model_name} v{champion.version}")
    metadata = {
        "model_version": dg.MetadataValue.text(champion.version),
        "tarmac/window": dg.MetadataValue.text(f"[{start}, {end})"),
        "tarmac/window_row_count": dg.MetadataValue.int(len(scored)),
        "mean_delay_probability": dg.MetadataValue.float(float(scored["delay_probability"].mean()) if len(scored) else 0.0),
    }
    if end == _next_day(start):
        metadata["dagster/row_count"] = dg.MetadataValue.int(len(scored))
    return dg.MaterializeResult(metadata=metadata)


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
