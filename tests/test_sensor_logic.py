"""The sensors' pure logic: ranges, checksums, the look-back graph, the replay clock, due days."""

from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from assets.quality.partition_freshness import due_days
from sensors.landing import Cursor, LandingFile, contiguous_ranges, run_key
from sensors.refresh import daily_downstream, lookback_children
from tarmac.clock import Clock, Deliveries, ReplayClock, pipeline_clock, start_replay_clock
from tarmac.days import days_between
from tools.replay import replay

NEW_YORK = ZoneInfo("America/New_York")


def test_days_fold_into_ranges_of_consecutive_days():
    assert contiguous_ranges(["2013-03-03", "2013-03-01", "2013-03-02", "2013-03-05", "2013-02-28"]) == [
        ("2013-02-28", "2013-03-03"),
        ("2013-03-05", "2013-03-05"),
    ]
    assert contiguous_ranges([]) == []


def test_run_key_is_the_content_not_the_order():
    a = (LandingFile("flights", "2013-03-01", "landing/flights/2013-03-01.csv"), "aa")
    b = (LandingFile("weather", "2013-03-01", "landing/weather/2013-03-01.csv"), "bb")
    assert run_key("landing", [a, b]) == run_key("landing", [b, a])
    assert run_key("landing", [a, b]) != run_key("landing", [a, (b[0], "cc")])  # a corrected file


def test_cursor_rehashes_only_changed_files_and_survives_serialization(tmp_path):
    path = tmp_path / "2013-03-01.csv"
    path.write_text("a,b\n1,2\n")
    cursor = Cursor(None)
    first = cursor.md5("landing/flights/2013-03-01.csv", path)
    restored = Cursor(cursor.serialize())
    assert restored.md5("landing/flights/2013-03-01.csv", path) == first
    # a stale cache entry with the file's size and mtime is trusted; that is the point of the cache
    st = path.stat()
    restored.stat["landing/flights/2013-03-01.csv"] = [st.st_mtime_ns, st.st_size, "cached"]
    assert restored.md5("landing/flights/2013-03-01.csv", path) == "cached"
    path.write_text("a,b\n1,3\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert restored.md5("landing/flights/2013-03-01.csv", path) not in ("cached", first)


def test_lookback_graph_is_the_one_the_dbt_models_declare():
    from definitions import defs

    graph = defs.get_repository_def().asset_graph
    gold = dg.AssetKey(["gold", "flight_features"])
    children = lookback_children(graph)
    # silver flights (10 days back), weather (1 day back) and the planes reference feed gold
    assert children[dg.AssetKey(["silver", "flights"])] == [gold]
    assert children[dg.AssetKey(["silver", "weather"])] == [gold]
    assert children[dg.AssetKey(["silver", "planes"])] == [gold]
    assert dg.AssetKey(["bronze", "flights"]) not in children  # bronze → silver is day for day
    mapping = graph.get_partition_mapping(gold, dg.AssetKey(["silver", "flights"]))
    assert mapping.start_offset == -10
    assert daily_downstream(graph, [gold]) == [
        gold, dg.AssetKey(["gold", "training_set"]), dg.AssetKey(["online", "flights"])
    ]


def test_replay_clock_runs_one_day_per_interval():
    clock = ReplayClock.starting(date(2013, 3, 1), seconds_per_day=60, wall_start=1000.0)
    assert clock.at(1000.0) == datetime(2013, 3, 2, tzinfo=NEW_YORK)  # the first day has just ended
    assert clock.at(1015.0) == datetime(2013, 3, 2, 6, tzinfo=NEW_YORK)
    assert clock.wall_time_of(datetime(2013, 3, 3, tzinfo=NEW_YORK)) == 1060.0


def test_due_days_follow_the_deadline_on_the_replay_clock():
    import time

    def replayed_at(hours_after_start: float) -> Clock:
        # a replay at real speed that started with 2013-03-03 delivered (clock at 03-04 00:00)
        return Clock(ReplayClock(time.time() - hours_after_start * 3600, "2013-03-04T00:00:00", 86400.0))

    days, deadline, following = due_days(replayed_at(27), "0 4 * * *")  # 03-05 03:00
    assert days == ["2013-03-03"]  # 03-04 is not due before 03-05 04:00
    assert deadline == datetime(2013, 3, 4, 4, tzinfo=NEW_YORK) and following == datetime(2013, 3, 5, 4, tzinfo=NEW_YORK)
    assert due_days(replayed_at(29), "0 4 * * *")[0] == ["2013-03-03", "2013-03-04"]  # 03-05 05:00
    assert due_days(replayed_at(1), "0 4 * * *")[0] == []  # 03-04 01:00: nothing due yet
    # the wall clock: every 2013 day is long due
    wall_days, _, _ = due_days(Clock(None), "0 4 * * *")
    assert (wall_days[0], wall_days[-1], len(wall_days)) == ("2013-01-01", "2013-12-31", 365)


def test_without_a_replay_only_delivered_days_are_due_the_latest_by_its_deadline_after_it_landed(paths):
    import time

    cron = "0 4 * * *"
    two_weeks = days_between("2013-03-01", "2013-03-14")
    # the latest day ends when its files land: 03-14 is due at 03-15 04:00, 4 h after it landed
    just_landed = Clock(None, Deliveries(frozenset(two_weeks), time.time()))
    assert due_days(just_landed, cron)[0] == two_weeks[:-1]
    assert just_landed.now().date().isoformat() == "2013-03-15"
    assert due_days(Clock(None, Deliveries(frozenset(two_weeks), time.time() - 5 * 3600)), cron)[0] == two_weeks
    # a day upstream never delivered is not the pipeline's to process; nothing landed, nothing due
    with_a_gap = Clock(None, Deliveries(frozenset(two_weeks) - {"2013-03-05"}, time.time() - 5 * 3600))
    assert due_days(with_a_gap, cron)[0] == [d for d in two_weeks if d != "2013-03-05"]
    assert due_days(Clock(None, Deliveries(frozenset())), cron)[0] == []

    # read from the landing zone: the days of its daily files, the latest day's files' landing time
    assert pipeline_clock(paths).mode == "deliveries" and pipeline_clock(paths).deliveries.days == frozenset()
    for dataset, day, landed in [("flights", "2013-03-01", 1000.0), ("flights", "2013-03-02", 2000.0),
                                 ("weather", "2013-03-02", 2500.0), ("weather", "2013-03-01", 3000.0)]:
        file = paths.landing_day_file(dataset, day)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("header\n")
        os.utime(file, (landed, landed))
    (paths.landing / "flights" / "notes.csv").write_text("not a day\n")
    clock = pipeline_clock(paths)
    assert clock.deliveries == Deliveries(frozenset({"2013-03-01", "2013-03-02"}), 2500.0)
    assert clock.wall_time_of(datetime(2013, 3, 3, 4, tzinfo=NEW_YORK)) == 2500.0 + 4 * 3600


def test_replay_lands_one_day_per_interval_and_writes_its_clock(paths):
    slept: list[float] = []
    landed = replay(paths, date(2013, 3, 1), date(2013, 3, 3), 0.01, sleep=slept.append, log=lambda _: None)
    assert landed == 3
    assert sorted(p.stem for p in (paths.landing / "flights").glob("*.csv")) == ["2013-03-01", "2013-03-02", "2013-03-03"]
    assert pipeline_clock(paths).mode == "replay"
    start_replay_clock(paths, ReplayClock.starting(date(2013, 1, 1), 60))
    assert pipeline_clock(paths).now().year == 2013


def test_days_a_queued_run_or_an_unfinished_backfill_will_load_are_in_flight():
    from types import SimpleNamespace

    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

    from assets.partitions import daily_partitions
    from sensors.landing import in_flight

    flights, weather, planes = (dg.AssetKey(["bronze", n]) for n in ("flights", "weather", "planes"))
    queued_run = SimpleNamespace(
        asset_selection={flights, dg.AssetKey(["silver", "flights"])},
        tags={"dagster/asset_partition_range_start": "2013-03-01", "dagster/asset_partition_range_end": "2013-03-02"},
    )
    gold_only_run = SimpleNamespace(asset_selection={dg.AssetKey(["gold", "flight_features"])}, tags={"dagster/partition": "2013-03-05"})
    backfill = SimpleNamespace(
        asset_backfill_data=SimpleNamespace(
            target_subset=AssetGraphSubset(
                partitions_subsets_by_asset_key={weather: daily_partitions.subset_with_partition_keys(["2013-03-04"])},
                non_partitioned_asset_keys={planes},
            )
        )
    )
    instance = SimpleNamespace(
        get_runs=lambda filters: [queued_run, gold_only_run],
        get_backfills=lambda status: [backfill, SimpleNamespace(asset_backfill_data=None)],
    )
    busy = in_flight(instance, {flights: "flights", weather: "weather", planes: "planes"})
    assert busy == {("flights", "2013-03-01"), ("flights", "2013-03-02"), ("weather", "2013-03-04"), ("planes", None)}
