"""A crash, a kill or a stop must not leave the pipeline needing a person.

`kill -9` of a backfill in the middle of silver's and of gold's dbt step, then the same command
again: it finds the dead run, marks it failed, frees its pool slot, and gives the tables a clean
run gives. SIGTERM ends a backfill that waits for the warehouse pool within seconds, its run
canceled and its slots freed. An instance without the warehouse pool is refused or completed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from tarmac.days import days_between
from tarmac.orchestration.recovery import PROCESS_TAG, InstanceConfigError, recover_dead_runs, require_warehouse_pool
from tarmac.paths import PROJECT_ROOT, TarmacPaths
from tarmac.warehouse import WAREHOUSE_POOL
from tests.conftest import table_hash
from tools.landing import fill_landing_zone

DAYS = ("2013-04-08", "2013-04-09")
TABLES = [
    "bronze.flights", "bronze.weather", "silver.flights", "silver.weather", "silver.quarantine",
    "silver.load_audit", "gold.flight_features", "gold.training_set",
]


def _backfill(home: Path, data: Path, days=DAYS) -> subprocess.Popen:
    """`make backfill`'s command, as a user starts it (supervised), writing its log to a file."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "TARMAC_DATA_DIR": str(data)}
    log = data.parent / f"backfill-{uuid.uuid4().hex[:8]}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "backfill", "--start", days[0], "--end", days[1]],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )
    process.log = log  # type: ignore[attr-defined]
    return process


def _wait_for_output(process: subprocess.Popen, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log.read_text():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{text!r} not printed within {timeout:.0f} s"
        time.sleep(0.5)


@contextmanager
def _instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance in `home`, opened as Tarmac's processes open it (under the lock that keeps two
    processes from creating a fresh instance's tables at once)."""
    from tarmac.orchestration.instance import dagster_instance

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dagster_instance() as instance:
            yield instance
    finally:
        os.environ.pop("DAGSTER_HOME") if before is None else os.environ.update(DAGSTER_HOME=before)


def _wait_for_step(home: Path, step: str, timeout: float = 300) -> int:
    """Until a run of the instance that is still going has started `step`: the pid of the process
    that executes it, read in the same look, so that the run (which has its later steps still to
    go) does not end between seeing the step and naming the process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (home / "dagster.yaml").exists():  # the command has not opened the instance yet
            time.sleep(0.2)
            continue
        with _instance(home) as instance:
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=5):
                started = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
                if any(r.event_log_entry.step_key == step for r in started):
                    return int(run.tags[PROCESS_TAG].rsplit(":", 2)[1])
        time.sleep(0.2)
    raise AssertionError(f"no running step {step} within {timeout:.0f} s")


def _fresh(tmp_path: Path, name: str) -> tuple[Path, Path]:
    home, data = tmp_path / name / "dagster_home", tmp_path / name / "data"
    data.mkdir(parents=True)
    fill_landing_zone(TarmacPaths(data), days_between(*DAYS))
    return home, data  # no dagster.yaml: the command writes the project's default one


@pytest.mark.pipeline
@pytest.mark.slow
def test_kill_9_during_silver_and_during_gold_then_the_same_command_completes_as_a_clean_run(tmp_path):
    clean_home, clean = _fresh(tmp_path, "clean")
    run = _backfill(clean_home, clean)
    assert run.wait(timeout=900) == 0
    assert (clean_home / "dagster.yaml").read_text() == (PROJECT_ROOT / ".dagster" / "dagster.yaml").read_text()

    home, data = _fresh(tmp_path, "crashed")
    # 1. the supervisor itself is killed while silver's dbt step runs: its child dies with it
    first = _backfill(home, data)
    _wait_for_step(home, "daily_silver_models")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    # 2. the same command; this time the process executing the runs is killed during gold
    second = _backfill(home, data)
    os.kill(_wait_for_step(home, "daily_gold_models"), signal.SIGKILL)  # inside dbt's gold build
    assert second.wait(timeout=60) != 0
    # 3. the same command again completes, with nobody having touched the instance
    third = _backfill(home, data)
    assert third.wait(timeout=900) == 0

    with _instance(home) as instance:
        runs = instance.get_runs()
        assert not [r.run_id for r in runs if not r.is_finished]
        assert not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
        # the run of the killed supervisor was released by the next command; the killed worker's
        # run by its supervisor
        failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        assert len(failed) == 2, [(r.run_id, r.status) for r in runs]
    for table in TABLES:
        assert table_hash(TarmacPaths(data), table) == table_hash(TarmacPaths(clean), table), table


@pytest.mark.pipeline
@pytest.mark.slow
def test_sigterm_ends_a_backfill_waiting_for_the_pool_within_seconds(tmp_path):
    home, data = _fresh(tmp_path, "stopped")
    holder = _backfill(home, data)
    _wait_for_step(home, "reference_models")
    waiting = _backfill(home, data, days=(DAYS[1], DAYS[1]))
    _wait_for_output(waiting, f"blocked by limit for pool {WAREHOUSE_POOL}")
    started = time.monotonic()
    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(timeout=120) == 128 + signal.SIGTERM
    # it ended while blocked, not once the holder's slot came free: the holder is still at work (a
    # comparison of the two, not a number of seconds, which a loaded machine stretches; the
    # supervisor's grace is 5 s and the whole stop took 4.6-5.9 s on a quiet machine)
    assert holder.poll() is None, f"the stopped backfill ended only after the holder ({time.monotonic() - started:.1f} s)"
    with _instance(home) as instance:
        ended = [r for r in instance.get_runs() if r.status != dg.DagsterRunStatus.SUCCESS and r.is_finished]
        # the stopped backfill's run, and only it, is canceled, and holds no slot
        assert [r.status for r in ended] == [dg.DagsterRunStatus.CANCELED], [(r.run_id, r.status) for r in ended]
        assert ended[0].run_id not in instance.event_log_storage.get_concurrency_run_ids()
    assert holder.wait(timeout=900) == 0  # the other backfill was not disturbed


def _started_run(instance: dg.DagsterInstance, identity: str) -> dg.DagsterRun:
    from dagster._core.utils import make_new_run_id

    run = dg.DagsterRun(job_name="backfill", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={PROCESS_TAG: identity})
    instance.add_run(run)
    return run


def test_a_dead_process_run_is_released_and_a_live_one_kept(dagster_home):
    """recover_dead_runs: a STARTED run whose process is gone is marked failed and its pool slot
    freed; the run of a live process (this one) is left alone, and so is its slot."""
    from tarmac.orchestration.instance import dagster_instance
    from tarmac.orchestration.recovery import process_identity

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_identity = process_identity(gone.pid)  # taken while it lives: host, pid, start time
    gone.wait()
    with dagster_instance() as instance:
        require_warehouse_pool(instance, WAREHOUSE_POOL)  # the project's dagster.yaml: one slot
        dead, alive = _started_run(instance, dead_identity), _started_run(instance, process_identity())
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "daily_silver_models").is_claimed
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, alive.run_id, "daily_gold_models").is_claimed

        assert recover_dead_runs(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_run_ids() == {alive.run_id}  # waiting, now next in line
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, alive.run_id, "daily_gold_models").is_claimed
        assert recover_dead_runs(instance) == []


def test_an_instance_without_a_one_slot_pool_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 3\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    from tarmac.orchestration.instance import dagster_instance

    with dagster_instance() as instance, pytest.raises(InstanceConfigError, match=r"default_limit is 3, not 1"):
        require_warehouse_pool(instance, WAREHOUSE_POOL)


def test_a_step_left_waiting_beside_a_free_slot_is_assigned_it(dagster_home):
    """Dagster's race between one run's step freeing the pool's slot and another run's step asking
    for it: the asking step is queued unassigned after the free looked for someone to hand the slot
    to, and nothing assigns it later. `assign_stranded_steps` (in every recovery pass) hands it the
    free slot; a step that waits behind a slot in use is left waiting."""
    from tarmac.orchestration.instance import dagster_instance
    from tarmac.orchestration.recovery import assign_stranded_steps, process_identity

    with dagster_instance() as instance:
        require_warehouse_pool(instance, WAREHOUSE_POOL)
        first, second = _started_run(instance, process_identity()), _started_run(instance, process_identity())
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        # waiting behind a slot in use: not stranded
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, first.run_id, "online__planes").is_claimed
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, second.run_id, "silver_daily_checks").is_claimed
        assert assign_stranded_steps(instance, min_wait_seconds=0) == []
        storage.free_concurrency_slots_for_run(second.run_id)
        # the race, in the order it happened: the asking step saw the slot taken, the holder freed
        # it and found nobody queued, then the asking step queued itself unassigned
        storage.free_concurrency_slot_for_step(first.run_id, "online__planes")
        storage.add_pending_step(WAREHOUSE_POOL, second.run_id, "silver_daily_checks", should_assign=False)
        for _ in range(3):  # as Dagster's executor polls it: blocked for good
            assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, second.run_id, "silver_daily_checks").is_claimed
        assert assign_stranded_steps(instance, min_wait_seconds=3600) == []  # not waiting long enough yet
        assert assign_stranded_steps(instance, min_wait_seconds=0) == [(second.run_id, "silver_daily_checks")]
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, second.run_id, "silver_daily_checks").is_claimed
        assert assign_stranded_steps(instance, min_wait_seconds=0) == []
    # a backfill executed in process has no daemon beside it: its runs carry a watchdog that does it
    from tarmac.orchestration.recovery import stranded_steps_watchdog

    with dagster_instance() as instance:
        storage = instance.event_log_storage
        third = _started_run(instance, process_identity())
        storage.free_concurrency_slots_for_run(second.run_id)  # the race again: freed, then queued unassigned
        storage.add_pending_step(WAREHOUSE_POOL, third.run_id, "gold_daily_checks", should_assign=False)
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, third.run_id, "gold_daily_checks").is_claimed
        told: list[str] = []
        with stranded_steps_watchdog(instance, every=0.1, min_wait_seconds=0, log=told.append):
            deadline = time.monotonic() + 10
            while not storage.claim_concurrency_slot(WAREHOUSE_POOL, third.run_id, "gold_daily_checks").is_claimed:
                assert time.monotonic() < deadline, "the watchdog never assigned the free slot"
                time.sleep(0.1)
        assert told and told[0].startswith(f"pool {WAREHOUSE_POOL}: a slot was free while 1 step(s) waited unassigned")
