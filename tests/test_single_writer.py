"""DuckDB allows one writer per file: overlapping runs must queue on the warehouse pool, not crash.

Two `backfill` processes share one instance configured by the project's own `.dagster/dagster.yaml`
and one data directory, and start together, as a backfill and a sensor run would.
"""

import os
import shutil
import subprocess
import sys

from resources.settings import PROJECT_ROOT


def test_overlapping_runs_share_the_warehouse_without_lock_errors(paths, tmp_path, query):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TARMAC_DATA_DIR": str(paths.data_dir)}

    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "resources.cli", "backfill", "--start", day, "--end", day],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in ("2013-02-01", "2013-02-02")
    ]
    outputs = [run.communicate(timeout=900)[0] for run in runs]

    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
        assert "Could not set lock" not in output
    # both days landed in every layer: neither run lost its write to the other
    assert query("select count(distinct flight_date) from gold.flight_features")[0][0] == 2
    assert query("select count(distinct landing_date) from bronze.weather")[0][0] == 2
