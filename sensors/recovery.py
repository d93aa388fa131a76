"""Dead-run sensor: a backfill whose process died must not hold the warehouse pool until someone notices.

The runs `make backfill` executes in-process have no code server to notice their death; the next
backfill releases them, and so does this sensor, so that the landing and refresh sensors' runs
never wait behind a dead one while nobody runs a backfill.
"""

from __future__ import annotations

import dagster as dg

from tarmac.orchestration.recovery import recover_dead_runs
from tarmac.settings.loader import load_settings


@dg.sensor(
    name="dead_run_sensor",
    minimum_interval_seconds=load_settings().sensors.dead_run_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=__doc__.split("\n\n")[0],
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Mark failed the runs whose process is gone, and free the pool slots of finished runs."""
    released = recover_dead_runs(context.instance, log=context.log.warning)
    if not released:
        return dg.SkipReason("no run of a dead process, no slot held by a finished run")
    return dg.SkipReason(f"released {len(released)} runs: {', '.join(released[:10])}")
