"""Tarmac's Dagster definitions: landing zone → bronze → silver → gold."""

import dagster as dg

from assets.landing import landing_specs
from assets.medallion import daily_medallion_models, reference_models
from resources.dbt import dbt_resource
from sensors import all_sensors

defs = dg.Definitions(
    assets=[*landing_specs, reference_models, daily_medallion_models],
    sensors=all_sensors,
    resources={"dbt": dbt_resource()},
)
