"""The daily partitions every time-partitioned asset shares: one per local day of 2013."""

from collections.abc import Mapping

import dagster as dg

from tarmac.days import days_between
from tarmac.paths import FIRST_DAY, LAST_DAY, LOCAL_TIMEZONE

# The end is exclusive: the last partition is 2013-12-31.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY,
    end_date="2014-01-01",
    timezone=LOCAL_TIMEZONE,
)

assert daily_partitions.get_last_partition_key() == LAST_DAY

# The tags Dagster puts on a run of one partition, or of a range of them (single-run backfills).
PARTITION_TAG = "dagster/partition"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def partition_days(tags: Mapping[str, str]) -> list[str] | None:
    """The local days a run covers, from its partition tags; None for an unpartitioned run."""
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START in tags:
        return days_between(tags[RANGE_START], tags[RANGE_END])
    return None
