"""Metrics history and drift reports: what every check run measured, kept for trends.

Numbers go to `monitoring.duckdb` in the data directory (one row per check, partition, metric and
run), not to the warehouse: checks only read the warehouse. Check steps run in the warehouse pool,
one at a time, so this file has one writer too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tarmac.quality.evaluate import Outcome

DDL = """
create table if not exists check_metrics (
    run_id varchar not null,
    asset_key varchar not null,
    check_name varchar not null,
    partition_date date,
    metric varchar not null,
    value double,
    severity varchar not null,
    recorded_at timestamptz not null
);
create or replace view latest_check_metrics as
select * exclude (rn) from (
    select *, row_number() over (
        partition by asset_key, check_name, partition_date, metric order by recorded_at desc) as rn
    from check_metrics
) where rn = 1;
"""


def record(database: Path, run_id: str, outcomes: Iterable[Outcome]) -> int:
    """Append every outcome's metrics as rows of check_metrics; the number of rows.

    The rows go in as one statement over columns bound as lists: a year's check step records
    tens of thousands of figures, which DuckDB's executemany inserts one statement at a time."""
    rows = [
        (o.asset_key.to_user_string(), o.check_name, o.partition, metric,
         None if value is None else float(value), o.severity)
        for o in outcomes
        for metric, value in o.metrics.items()
    ]
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        con.execute(DDL)
        if rows:
            keys, checks, days, metrics, values, severities = map(list, zip(*rows, strict=True))
            con.execute(
                "insert into check_metrics select $run_id, unnest($keys::varchar[]), unnest($checks::varchar[]), "
                "unnest($days::varchar[])::date, unnest($metrics::varchar[]), unnest($values::double[]), "
                "unnest($severities::varchar[]), $now",
                {"run_id": run_id, "keys": keys, "checks": checks, "days": days, "metrics": metrics,
                 "values": values, "severities": severities, "now": datetime.now(UTC)},
            )
    return len(rows)


def drift_report(outcome: Outcome, path: Path) -> Path:
    """A bar chart of one partition's drift per column, each as a multiple of its own calibrated
    error threshold (the reference's largest day-to-day value x error_margin), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = outcome.metadata["statistics"].value
    names = [n for n in stats if stats[n].get("value") is not None and stats[n].get("error")]
    ratios = [float(stats[n]["value"]) / float(stats[n]["error"]) for n in names]
    warns = [float(stats[n]["warn"]) / float(stats[n]["error"]) for n in names]
    colours = {"ok": "#4c9a2a", "drifted": "#e0a000", "beyond normal": "#d35400", "broken": "#c0392b"}
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * max(len(names), 1) + 1.8), dpi=80)
    ax.barh([f"{n} ({stats[n]['statistic']})" for n in names], ratios,
            color=[colours.get(stats[n]["level"], "#999999") for n in names])
    ax.axvline(1.0, color="black", linewidth=1, label="error: the null's high quantile x margin")
    ax.scatter(warns, range(len(names)), marker="|", s=300, color="grey", label="warn: the null's high quantile")
    ax.set_xlim(0, max([1.2, *ratios]) * 1.08)
    ax.set_xlabel("statistic / its calibrated error threshold")
    ax.set_title(f"{outcome.asset_key.to_user_string()} {outcome.partition} vs {outcome.metadata['reference_window'].value}",
                 fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7, frameon=False)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG (creating its folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def inline_image(path: Path, title: str = "drift report") -> str:
    """Markdown that shows a PNG in the Dagster UI's metadata panel."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"
