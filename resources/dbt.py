"""The dbt project and CLI resource. The manifest is built by `make manifest` (set-up and CI), never
at import time: loading the definitions must stay cheap and side-effect free."""

import os
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from resources.settings import DBT_PROJECT_DIR, TarmacPaths

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def manifest_path() -> Path:
    path = dbt_project.manifest_path
    if not path.exists():
        raise FileNotFoundError(
            f"The dbt manifest {path} does not exist. Build it with `make manifest` "
            "(make run, make test and CI do this for you)."
        )
    return path


def dbt_resource() -> DbtCliResource:
    # The profile reads the warehouse location from TARMAC_DATA_DIR; pin it to the resolved path
    # so that dbt, started from its own folder, writes where the rest of Tarmac reads.
    os.environ["TARMAC_DATA_DIR"] = str(TarmacPaths.from_env().data_dir)
    # the dbt installed beside this interpreter, whether or not its environment is activated
    beside = Path(sys.executable).parent / "dbt"
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(beside) if beside.exists() else "dbt",
    )
