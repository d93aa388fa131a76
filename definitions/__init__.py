"""Tarmac's Dagster definitions: landing zone → bronze → silver → gold → model and predictions, and the
online store's batch loads, with their checks, sensors and the resources they all receive."""

import os

import dagster as dg

from assets.landing import landing_specs
from assets.medallion import daily_bronze_models, daily_gold_models, daily_silver_models, reference_models
from assets.ml.model import TRAINING_SET_KEY, flight_delay_model
from assets.ml.predictions import predictions
from assets.online import online_flight_features, online_planes
from assets.quality.checks import online_checks, prediction_checks, quality_checks
from assets.quality.partition_freshness import partition_freshness
from resources.config import TarmacConfig
from resources.dbt import DbtBuildResource, dbt_cli
from resources.model_registry import ModelRegistryResource
from resources.online_store import OnlineStoreResource
from resources.training_gate import TrainingGateResource
from resources.warehouse import WarehouseResource
from sensors import all_sensors
from tarmac.orchestration.sqlite_events import guard_slot_claims, keep_engines

# every process that runs steps loads these definitions: its SQLite event log keeps its engines,
# and its steps claim the warehouse pool's slot in one statement
keep_engines()
guard_slot_claims()

ASSETS = [
    *landing_specs,
    reference_models,
    daily_bronze_models,
    daily_silver_models,
    daily_gold_models,
    flight_delay_model,
    predictions,
    online_planes,
    online_flight_features,
]
CHECKS = [*quality_checks, prediction_checks, online_checks, partition_freshness]


def _environment(name: str) -> dg.EnvVar | None:
    """The variable, resolved where a step runs, when it is set; unset, the resource's default."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def resources(tarmac: TarmacConfig | None = None) -> dict[str, dg.ConfigurableResource]:
    """Every resource, built on one `TarmacConfig` (by default the environment's data dir and
    settings file): a test or a tool gives its own."""
    tarmac = tarmac or TarmacConfig(data_dir=_environment("TARMAC_DATA_DIR"), settings_file=_environment("TARMAC_SETTINGS"))
    warehouse = WarehouseResource(config=tarmac)
    services = {
        "tarmac": tarmac,
        "warehouse": warehouse,
        "dbt": DbtBuildResource(cli=dbt_cli(), warehouse=warehouse),
        "online_store": OnlineStoreResource(config=tarmac),
        "model_registry": ModelRegistryResource(config=tarmac),
        "training_gate": TrainingGateResource(),
    }
    graph = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=services).resolve_asset_graph()
    return {**services, "training_gate": TrainingGateResource.for_graph(graph, TRAINING_SET_KEY)}


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    sensors=all_sensors,
    resources=resources(),
    # A run's steps form one chain (each layer, then its checks) and the warehouse pool admits one
    # step at a time anyway: a process per step would only add start-up time to every run.
    executor=dg.in_process_executor,
)
