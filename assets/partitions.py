"""The daily partitions every time-partitioned asset shares: one per local day of 2013."""

import dagster as dg

from resources.settings import FIRST_DAY, LAST_DAY, LOCAL_TIMEZONE

# The end is exclusive: the last partition is 2013-12-31.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY,
    end_date="2014-01-01",
    timezone=LOCAL_TIMEZONE,
)

assert daily_partitions.get_last_partition_key() == LAST_DAY
