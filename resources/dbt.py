"""dbt as the medallion layers run it: `dbt build` of a step's models as one writing step of the
warehouse. The manifest is built by `make manifest` (set-up and CI), never at import time."""

import importlib.metadata
import json
import os
import queue
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource
from dagster_dbt.asset_utils import extract_runtime_selection_from_args, get_updated_cli_invocation_params_for_context
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

from resources.warehouse import WarehouseResource
from tarmac.dbt_project import dbt_project, project_state
from tarmac.paths import DBT_PROJECT_DIR

# The run's values (dbt_project/macros/run_var.sql): TARMAC_RUN_MIN_DATE, TARMAC_RUN_MAX_DATE, ...
RUN_VAR_PREFIX = "TARMAC_RUN_"
PARTIAL_PARSE = "partial_parse.msgpack"


class TarmacDbtCli(DbtCliResource):
    """dagster-dbt's resource, without the fixed costs of each invocation that buy this project nothing.

    - dbt runs in the step's own process (`in_process`, dbt's programmatic `dbtRunner`) instead of
      a new Python process per step, which imports dbt again (about 3 s) and registers the adapter
      (about 1 s) before it reads the partial parse: a step's `dbt build` of a day took 7.3 s as a
      subprocess and 3.0 s in process. The events are the ones the subprocess prints, so
      dagster-dbt turns them into the same materializations and check results. `in_process=False`
      runs the `dbt` executable, as dagster-dbt does.
    - dagster-dbt asks the executable for its version (`dbt --version`, a Python process that
      imports dbt: about 3 s, once per run) and builds an in-process dbt adapter before each
      invocation (loading every macro: about 2.4 s per step), which it uses only to fetch column
      metadata and row counts. The version here is the installed dbt-core's; the layers report
      their row counts themselves, so no adapter is needed.

    tests/test_definitions.py pins the private hooks and helpers used here to the installed dagster-dbt.
    """

    in_process: bool = True

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None

    def cli(  # type: ignore[override]
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest: Mapping[str, Any] | None = None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context: dg.AssetExecutionContext | dg.OpExecutionContext | None = None,
        target_path: Path | None = None,
    ) -> DbtCliInvocation:
        """As DbtCliResource.cli (the same selection from the context, environment and target
        folder), with dbt running in this process unless `in_process` is off. The caller keeps the
        environment it set for dbt (the run's values) until the invocation has finished."""
        if not self.in_process:
            return super().cli(args, raise_on_error=raise_on_error, manifest=manifest,
                               dagster_dbt_translator=dagster_dbt_translator, context=context,
                               target_path=target_path)
        cleaned_args, runtime_selects, runtime_excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context, manifest=manifest or {}, dagster_dbt_translator=dagster_dbt_translator or DagsterDbtTranslator(),
            runtime_selects=runtime_selects, runtime_excludes=runtime_excludes,
        )
        project_dir = Path(params.dbt_project.project_dir if params.dbt_project else self.project_dir)
        target_path = target_path or self._get_unique_target_path(context=context)
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        profile_args = [*(["--profile", self.profile] if self.profile else []),
                        *(["--target", self.target] if self.target else [])]
        # what dagster-dbt gives the subprocess: structured logs, artifacts and the log file in the
        # invocation's own target folder, no usage statistics; nothing printed by dbt itself, since
        # its events reach dagster-dbt (which prints them) by the callback instead of a pipe
        environment = {
            "DBT_LOG_FORMAT": "json",
            "DBT_LOG_LEVEL": "none",
            "DBT_TARGET_PATH": os.fspath(target_path),
            "DBT_LOG_PATH": os.fspath(target_path),
            "DBT_PROJECT_DIR": os.fspath(project_dir),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_DBT_CLI": "true",
            **({"DBT_PROFILES_DIR": self.profiles_dir} if self.profiles_dir else {}),
            **({"DBT_INDIRECT_SELECTION": params.indirect_selection} if params.indirect_selection else {}),
        }
        seed = project_dir / dbt_project.target_path / PARTIAL_PARSE
        if seed.exists() and not (target_path / PARTIAL_PARSE).exists():  # as dagster-dbt seeds it
            target_path.mkdir(parents=True, exist_ok=True)
            shutil.copy(seed, target_path / PARTIAL_PARSE)
        dbt_args = [*self.global_config_flags, *cleaned_args, *profile_args, *params.selection_args]
        return DbtCliInvocation(
            process=InProcessDbt(dbt_args, environment),  # type: ignore[arg-type]
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            context=context,
            adapter=None,
            cli_version=self._cli_version,
            project=params.dbt_project,
        )


# The levels of the events a dbt process prints by default (`--log-level info`): what dagster-dbt reads.
_PRINTED_LEVELS = {"info", "warn", "error"}
_DONE = object()
# one dbt invocation at a time in a process: dbt's flags, adapters and event manager are global
_ONE_DBT = threading.Lock()


class InProcessDbt:
    """One dbt invocation run by `dbtRunner` on a thread of this process, shaped as the part of
    `subprocess.Popen` that dagster-dbt's DbtCliInvocation reads: `stdout` yields the JSON log lines
    the `dbt` executable would print, `wait()` gives its exit code (0 success, 1 failure, 2 error).

    dbt reads its environment (the invocation's DBT_* values here, the run's values the caller
    set) while it runs, so the DBT_* values stay in os.environ until it has finished. An interrupt
    cannot stop dbt mid-statement in process: `send_signal` is a no-op and `wait` lets the build
    finish, after which the writing step undoes it.
    """

    def __init__(self, args: Sequence[str], environment: Mapping[str, str]):
        self.args = ["dbt", *args]
        self.returncode: int | None = None
        self._lines: queue.Queue = queue.Queue()
        self.stdout = _Lines(self._lines)
        self._thread = threading.Thread(target=self._run, args=(list(args), dict(environment)), name="dbt", daemon=True)
        self._thread.start()

    def _run(self, args: list[str], environment: dict[str, str]) -> None:
        code = 2
        try:
            with _ONE_DBT, _environment(environment):
                from dbt.cli.main import dbtRunner  # dbt-core's programmatic entry point (imports dbt: 3 s)
                from dbt_common.events.functions import msg_to_dict
                from dbt_common.utils.encoding import ForgivingJSONEncoder

                def forward(event: Any) -> None:
                    if event.info.level in _PRINTED_LEVELS:
                        self._lines.put(json.dumps(msg_to_dict(event), sort_keys=True, cls=ForgivingJSONEncoder).encode())

                try:
                    manifest, failed, parsed = _parsed_manifest(args, forward)
                    if not parsed:
                        # dbt runs from the process's parse and never reads the partial parse seeded
                        # in its target folder (written for some data dir, maybe not this one's):
                        # it is not this invocation's to pass on as the data dir's own
                        (Path(environment["DBT_TARGET_PATH"]) / PARTIAL_PARSE).unlink(missing_ok=True)
                    result = failed if failed is not None else dbtRunner(manifest=manifest, callbacks=[forward]).invoke(args)
                finally:
                    _release_duckdb()
                if result.exception is not None:
                    raise result.exception  # an error of dbt's, not a failed node: exit code 2
                code = 0 if result.success else 1
        except BaseException as error:
            self._lines.put(f"dbt raised {type(error).__name__}: {error}".encode())
        finally:
            self.returncode = code
            self._lines.put(_DONE)

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join()  # never abandoned mid-build: a writing step undoes only a finished build
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        """dbt in process cannot be interrupted mid-statement; the build finishes and is undone."""


# The project as dbt parsed it in this process, by project state and profile arguments.
_PARSED: dict[tuple, Any] = {}
_PROFILE_FLAGS = ("--profile", "--target", "--profiles-dir", "--project-dir")


def _parsed_manifest(args: Sequence[str], forward: Callable[[Any], None]) -> tuple[Any, Any, bool]:
    """(manifest, None, parsed): the project parsed once per process and state of its files, which
    every invocation of the process then runs from (dbt's documented reuse, `dbtRunner(manifest=...)`),
    or (None, the failed parse's result, True); `parsed` says whether this invocation parsed (and
    so wrote the partial parse of its data dir in its target folder).

    dbt counts the profile among what a saved parse depends on, and the profile names the data
    dir's warehouse: for every data dir new to it (each test's, each benchmark's workspace) dbt
    parsed the whole project (2.5-4 s) before its first step. Nothing that parsing produces
    depends on the data dir (the warehouse is named `warehouse` in every one of them, and the
    landing root is read only while dbt executes), so one parse serves them all. A change to any
    file dbt parses is a new state and is parsed again (from the invocation's partial parse).

    Each invocation gets a copy of its own (dbt's `Manifest.deepcopy`, 30-50 ms): compiling marks
    the manifest's nodes (an ephemeral model's CTEs as injected into the SQL compiled for the run's
    window), and a second build on the same object would reuse what the first compiled."""
    from dbt.cli.main import dbtRunner  # imported by the first invocation (as in InProcessDbt._run)

    project_dir = Path(os.environ.get("DBT_PROJECT_DIR") or DBT_PROJECT_DIR)
    flags = tuple((a, b) for a, b in zip(args, args[1:]) if a in _PROFILE_FLAGS)
    # the engine is the profile's target: a parse holds configs that depend on it (partitioned_config)
    key = (os.fspath(project_dir), os.environ.get("DBT_PROFILES_DIR"), os.environ.get("TARMAC_ENGINE"), flags,
           project_state(project_dir))
    if key not in _PARSED:
        # parse's own report ("Found 18 models ...") is not the invocation's: only its problems are
        loud = [lambda event: event.info.level in ("warn", "error") and forward(event)]
        parsed = dbtRunner(callbacks=loud).invoke(["parse", *(a for pair in flags for a in pair)])
        if not parsed.success:
            return None, parsed, True
        _PARSED.clear()  # one state at a time: an older one will not come back
        _PARSED[key] = parsed.result
        return parsed.result.deepcopy(), None, True
    return _PARSED[key].deepcopy(), None, False


class _Lines:
    """The stdout of an InProcessDbt: its lines as bytes, until dbt has finished."""

    def __init__(self, lines: queue.Queue):
        self._queue = lines
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while (line := self._queue.get()) is not _DONE:
            yield line
        self.closed = True

    def __enter__(self) -> "_Lines":
        return self

    def __exit__(self, *_: object) -> None:
        self.closed = True


def _release_duckdb() -> None:
    """dbt-duckdb keeps its database open in a class-level environment across invocations in one
    process; close it, so that between steps nothing in this process holds the working copy (which
    the step then publishes, and another process may open)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another engine's adapter
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def dbt_cli(in_process: bool = True) -> DbtCliResource:
    """dagster-dbt's resource for the project: dbt in the step's process, or (`in_process=False`)
    the dbt installed beside this interpreter (whether or not its environment is activated)."""
    beside = Path(sys.executable).parent / "dbt"
    return TarmacDbtCli(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=str(beside) if beside.exists() else "dbt",
        in_process=in_process,
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
        and parsed everything, every time. The file of the last invocation on this data dir that
        read or wrote it is kept beside its warehouse and seeds the next one (an in-process
        invocation that ran from the process's parse neither reads nor writes it).
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
            # dbt reads the environment as it runs (in process) or as it starts (a subprocess);
            # `buildable`: a test that reads several layers (row conservation) runs with the last of them
            with _environment(environment):
                invocation = self.cli.cli(["build", "--indirect-selection", "buildable"], context=context,
                                          raise_on_error=False, target_path=target)
                try:
                    yield invocation
                    # published if dbt succeeded, undone if not: the layer's models commit together
                    done(invocation.is_successful())
                finally:
                    invocation.process.wait()  # nothing is published or undone while dbt still writes
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
