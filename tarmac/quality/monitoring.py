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
    now = datetime.now(UTC)
    rows = [
        (run_id, o.asset_key.to_user_string(), o.check_name, o.partition, metric, value, o.severity, now)
        for o in outcomes
        for metric, value in o.metrics.items()
    ]
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        con.execute(DDL)
        if rows:  # DuckDB refuses an empty executemany
            con.executemany("insert into check_metrics values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def drift_report(outcome: Outcome, ks_error: float, psi_error: float, path: Path) -> Path:
    """A bar chart of one partition's drift statistics against their error thresholds, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = outcome.metadata["statistics"].value
    names = list(stats)
    values = [stats[n]["value"] or 0.0 for n in names]
    limits = [ks_error if stats[n]["test"] == "ks" else psi_error for n in names]
    colours = {"ok": "#4c9a2a", "warn": "#e0a000", "error": "#c0392b"}
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2), dpi=80)
    ax.barh(names, values, color=[colours.get(stats[n]["severity"], "#999999") for n in names])
    ax.scatter(limits, names, marker="|", s=300, color="black", label="error threshold")
    ax.set_xlabel("KS statistic (numeric) / PSI (categorical)")
    ax.set_title(f"{outcome.asset_key.to_user_string()} {outcome.partition}: {outcome.metadata['reference_window'].value}",
                 fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
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
