"""Processes that open a fresh DAGSTER_HOME together must not race to create its SQLite storage."""

import os
import shutil
import subprocess
import sys

from tarmac.paths import PROJECT_ROOT

OPEN_INSTANCE = """
from tarmac.orchestration.instance import dagster_instance
with dagster_instance() as instance:
    print(len(instance.get_runs(limit=1)))
"""


def test_concurrent_processes_open_a_fresh_instance(tmp_path):
    # without the lock in dagster_instance(), most rounds lose one process to "table already exists"
    for round_ in range(2):
        home = tmp_path / f"home{round_}"
        home.mkdir()
        shutil.copy(PROJECT_ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_INSTANCE],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        for proc in procs:
            output = proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, output[-3000:]
            assert output.strip().splitlines()[-1] == "0"
