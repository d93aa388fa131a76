"""Tarmac's Dagster definitions: landing zone → bronze → silver → gold → model and predictions, and the
online store's batch loads, with their checks."""

import dagster as dg

from assets.landing import landing_specs
from assets.medallion import daily_bronze_models, daily_gold_models, daily_silver_models, reference_models
from assets.ml.model import flight_delay_model
from assets.ml.predictions import predictions
from assets.online import online_flight_features, online_planes
from assets.quality.checks import online_checks, prediction_checks, quality_checks
from assets.quality.partition_freshness import partition_freshness
from resources.dbt import dbt_resource
from sensors import all_sensors

defs = dg.Definitions(
    assets=[
        *landing_specs,
        reference_models,
        daily_bronze_models,
        daily_silver_models,
        daily_gold_models,
        flight_delay_model,
        predictions,
        online_planes,
        online_flight_features,
    ],
    asset_checks=[*quality_checks, prediction_checks, online_checks, partition_freshness],
    sensors=all_sensors,
    resources={"dbt": dbt_resource()},
    # A run's steps form one chain (each layer, then its checks) and the warehouse pool admits one
    # step at a time anyway: a process per step would only add start-up time to every run.
    executor=dg.in_process_executor,
)
