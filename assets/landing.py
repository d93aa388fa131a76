"""The landing zone as external assets: files the upstream system delivers, never written by Dagster.

Declaring them gives the graph its true start (landing → bronze) and lets the UI show which days
have landed: bronze reports each file it loads as a materialization of its partition, with the
file's md5 (assets/medallion.py). The dbt sources of the same names map onto these keys.
"""

import dagster as dg

from assets.partitions import daily_partitions

LANDING_OWNER = "team:data-platform"

DAILY_FILES = {
    "flights": "`landing/flights/YYYY-MM-DD.csv`: one file of scheduled flights per local day.",
    "weather": "`landing/weather/YYYY-MM-DD.csv`: hourly observations at EWR, JFK and LGA per local day.",
}

LOADED = " A day reads materialized once bronze has loaded its file (metadata: the file, its md5 and rows)."

landing_daily = [
    dg.AssetSpec(
        key=["landing", name],
        description=description + LOADED,
        partitions_def=daily_partitions,
        group_name="landing",
        kinds={"csv"},
        owners=[LANDING_OWNER],
    )
    for name, description in DAILY_FILES.items()
]

landing_reference = [
    dg.AssetSpec(
        key=["landing", name],
        description=f"`landing/reference/{name}.csv`: the {name} reference table.",
        group_name="landing",
        kinds={"csv"},
        owners=[LANDING_OWNER],
    )
    for name in ("planes", "airports", "airlines")
]

landing_specs = [*landing_daily, *landing_reference]
