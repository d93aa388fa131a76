"""dbt as the medallion layers run it: `dbt build` of a step's models as one writing step of the
warehouse. The manifest is built by `make manifest` (set-up and CI), never at import time."""

import importlib.metadata
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

from resources.warehouse import WarehouseResource
from tarmac.dbt_project import dbt_project
from tarmac.paths import DBT_PROJECT_DIR

# The run's values (dbt_project/macros/run_var.sql): TARMAC_RUN_MIN_DATE, TARMAC_RUN_MAX_DATE, ...
RUN_VAR_PREFIX = "TARMAC_RUN_"
PARTIAL_PARSE = "partial_parse.msgpack"


class TarmacDbtCli(DbtCliResource):
    """dagster-dbt's resource, without two costs of each invocation that buy this project nothing.

    dagster-dbt asks the executable for its version (`dbt --version`, a Python process that imports
    dbt: about 3 s, once per run) and builds an in-process dbt adapter before each invocation
    (loading every macro: about 2.4 s per step), which it uses only to fetch column metadata and
    row counts. The executable here is dbt-core's own, installed beside this interpreter, so its
    version is the installed package's; the layers report their row counts themselves, so no
    adapter is needed. tests/test_definitions.py pins both hooks to the installed dagster-dbt.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_cli() -> DbtCliResource:
    """dagster-dbt's resource for the project, with the dbt installed beside this interpreter
    (whether or not its environment is activated)."""
    beside = Path(sys.executable).parent / "dbt"
    return TarmacDbtCli(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(beside) if beside.exists() else "dbt",
    )


class DbtBuildResource(dg.ConfigurableResource):
    """`dbt build` on the warehouse's working copy. The profile (`dbt_project/profiles.yml`) names
    the warehouse under TARMAC_DATA_DIR, which each invocation gets from the warehouse resource;
    another engine is another resource with the same `build`."""

    cli: DbtCliResource
    warehouse: WarehouseResource

    @contextmanager
    def build(self, context: dg.AssetExecutionContext, run_vars: Mapping[str, str]) -> Iterator[DbtCliInvocation]:
        """`dbt build` of the context's selection, with the run's values in the environment (not in
        --vars, whose every change voids dbt's partial parse) and the partial parse kept per data dir;
        on the warehouse's working copy as one writing step: published if dbt succeeded, undone if not.

        dagster-dbt seeds each invocation's target folder with the project's partial_parse.msgpack,
        written by `make manifest` for the default data dir; the profile names the warehouse under
        TARMAC_DATA_DIR, so for any other data dir (a test's, a benchmark's) dbt found that file stale
        and parsed everything, every time. The file of the last invocation on this data dir is kept
        beside its warehouse and seeds the next one.
        """
        paths = self.warehouse.config.paths
        with self.warehouse.writing_step(context.log.warning) as done:
            cached = paths.dbt_partial_parse
            # dagster-dbt's own naming, which the benchmark's profile reads run results by
            target = DBT_PROJECT_DIR / dbt_project.target_path / (
                f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}")
            if cached.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(cached, target / PARTIAL_PARSE)
            environment = {RUN_VAR_PREFIX + name.upper(): str(value) for name, value in run_vars.items()}
            environment["TARMAC_DATA_DIR"] = str(paths.data_dir)  # what the profile reads
            # dagster-dbt hands the dbt process its environment as cli() starts it; `buildable`: a test
            # that reads several layers (row conservation) runs with the last of them
            with _environment(environment):
                invocation = self.cli.cli(["build", "--indirect-selection", "buildable"], context=context,
                                          raise_on_error=False, target_path=target)
            try:
                yield invocation
                # published if dbt succeeded, undone if not: the layer's models commit together
                done(invocation.is_successful())
            finally:
                written = target / PARTIAL_PARSE
                if written.exists():
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    partial = cached.with_suffix(f".{uuid.uuid4().hex[:7]}.tmp")
                    shutil.copy(written, partial)
                    os.replace(partial, cached)  # a reader sees the old file or the new one, never half


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
