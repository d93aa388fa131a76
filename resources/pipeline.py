"""Materializing the pipeline headlessly: the code behind `make backfill` and the graph tests."""

from __future__ import annotations

import dagster as dg

from assets.partitions import RANGE_END, RANGE_START



def materialize_days(
    start: str,
    end: str,
    instance: dg.DagsterInstance,
) -> list[dg.ExecuteInJobResult]:
    """Materialize every asset for the local days start..end (both included).

    The reference tables are unpartitioned and run first; the daily models then run once over the
    whole range, as their single-run backfill policy allows: two runs, whatever the range.
    """
    from definitions import defs

    reference = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def is None]
    daily = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def is not None]
    reference_checks = [c for c in defs.asset_checks if c.node_def.name == "reference_checks"]
    daily_checks = [c for c in defs.asset_checks if c.node_def.name != "reference_checks"]
    results = [
        dg.materialize([*reference, *reference_checks], instance=instance, resources=defs.resources, raise_on_error=False)
    ]
    if results[0].success:
        results.append(
            dg.materialize(
                [*daily, *daily_checks],
                instance=instance,
                resources=defs.resources,
                tags={RANGE_START: start, RANGE_END: end},
                raise_on_error=False,
            )
        )
    return results


def missing_days(instance: dg.DagsterInstance, days: list[str]) -> list[str]:
    """Days whose gold features have never been materialized in this instance."""
    done = instance.get_materialized_partitions(dg.AssetKey(["gold", "flight_features"]))
    return [d for d in days if d not in done]
