"""Broken landing files: every bad line is kept, quarantined with its exact place, and counted;
a file that cannot be read at all is rejected and fails its day, and only that day.

The files are real days from the landing writer, corrupted with plain Python before the run.
Physical line numbers count the header as line 1.
"""

import hashlib
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.partitions import daily_partitions
from tarmac.days import days_between
from tools.landing import fill_landing_zone

# One successful run over four days, each day's files carrying different faults.
TYPE_AND_TRUNCATION_DAY = "2013-05-06"  # flights: dep_delay 'abc' on one line; last line cut short
DUPLICATES_DAY = "2013-05-07"  # flights: an exact copy of a line, and a same-key line with another dep_delay
BLANK_LINE_DAY = "2013-05-08"  # flights: a blank line in the middle
NO_WEATHER_DAY = "2013-05-09"  # weather: no file delivered
DAYS = [TYPE_AND_TRUNCATION_DAY, DUPLICATES_DAY, BLANK_LINE_DAY, NO_WEATHER_DAY]

# Flights columns by position (the source's order).
DEP_TIME, DEP_DELAY, CARRIER, FLIGHT, ORIGIN = 3, 5, 9, 10, 12
WEATHER_COLUMNS = ["temp_f", "wind_speed_mph", "visib_mi", "precip_in", "humid"]


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str], trailing_newline: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if trailing_newline else ""), encoding="utf-8")


def flight_id(line: str, day: str) -> str:
    f = line.split(",")
    return f"{f[CARRIER]}-{f[FLIGHT]}-{f[ORIGIN]}-{day.replace('-', '')}"


def departed_line_index(lines: list[str], start: int) -> int:
    """Index of the first data line at or after `start` with a numeric dep_delay."""
    return next(i for i in range(start, len(lines)) if lines[i].split(",")[DEP_DELAY] not in ("NA", ""))


def physical_data_lines(path: Path) -> int:
    """Lines after the header, blank ones included, as a text editor would count them."""
    return len(read_lines(path)) - 1


def test_bad_lines_are_quarantined_counted_and_a_missing_weather_day_leaves_weather_unknown(
    paths, land, run_days, query
):
    """A day's bad lines never stop the day: each is quarantined with rule, reason, file, line
    and payload; duplicates are dropped and counted; every landed line is accounted for; a day
    without a weather file still gets features, with weather unknown once observations are stale."""
    land(DAYS[0], DAYS[-1])
    flights = {day: paths.landing_day_file("flights", day) for day in DAYS}

    # Day 1: a value of the wrong type, and a last line cut off mid-way with no final newline.
    lines = read_lines(flights[TYPE_AND_TRUNCATION_DAY])
    bad_type_index = departed_line_index(lines, 10)
    fields = lines[bad_type_index].split(",")
    fields[DEP_DELAY] = "abc"
    lines[bad_type_index] = ",".join(fields)
    bad_type = {"line": lines[bad_type_index], "number": bad_type_index + 1}
    truncated_line = lines[-1][: len(lines[-1]) // 2]
    truncated_id = flight_id(lines[-1], TYPE_AND_TRUNCATION_DAY)
    lines[-1] = truncated_line
    truncated_number = len(lines)
    write_lines(flights[TYPE_AND_TRUNCATION_DAY], lines, trailing_newline=False)

    # Day 2: an exact copy of one line, and a line with another line's key but a different dep_delay.
    lines = read_lines(flights[DUPLICATES_DAY])
    copied_index = departed_line_index(lines, 20)
    conflicted_index = departed_line_index(lines, 30)
    assert copied_index != conflicted_index
    fields = lines[conflicted_index].split(",")
    fields[DEP_DELAY] = str(int(fields[DEP_DELAY]) + 1)
    conflicting_line = ",".join(fields)
    lines += [lines[copied_index], conflicting_line]
    conflicting_number = len(lines)
    write_lines(flights[DUPLICATES_DAY], lines)
    copied_id = flight_id(lines[copied_index], DUPLICATES_DAY)
    conflicted_id = flight_id(lines[conflicted_index], DUPLICATES_DAY)
    original_dep_delay = int(lines[conflicted_index].split(",")[DEP_DELAY])

    # Day 3: a blank line in the middle; the line after it moves down by one.
    lines = read_lines(flights[BLANK_LINE_DAY])
    blank_index = 51
    lines.insert(blank_index, "")
    write_lines(flights[BLANK_LINE_DAY], lines)
    after_blank = {"line": lines[blank_index + 1], "number": blank_index + 2}
    blank_day_line_count = len(lines)

    # Day 4: no weather file.
    paths.landing_day_file("weather", NO_WEATHER_DAY).unlink()

    run_days(DAYS[0], DAYS[-1])

    quarantined = query(
        "select landing_date::varchar, rule, reason, source_file, source_line_number, raw_payload "
        "from silver.quarantine where dataset = 'flights' and action = 'row_quarantined' order by all"
    )
    by_place = {(row[3], row[4]): row for row in quarantined}

    def quarantined_at(day: str, number: int) -> tuple:
        key = (f"landing/flights/{day}.csv", number)
        assert key in by_place, f"no quarantined row at {key}; quarantined: {sorted(by_place)}"
        return by_place[key]

    # Only the injected faults are quarantined: the real rows of these days are all valid.
    assert sorted((day, rule, number) for day, rule, _, _, number, _ in quarantined) == sorted([
        (TYPE_AND_TRUNCATION_DAY, "invalid_type", bad_type["number"]),
        (TYPE_AND_TRUNCATION_DAY, "malformed_line", truncated_number),
        (DUPLICATES_DAY, "conflicting_duplicate", conflicting_number),
        (BLANK_LINE_DAY, "malformed_line", blank_index + 1),
    ])

    # A value of the wrong type: quarantined with the column and value named, the exact line, the payload.
    _, rule, reason, _, _, payload = quarantined_at(TYPE_AND_TRUNCATION_DAY, bad_type["number"])
    assert rule == "invalid_type"
    assert "column dep_delay" in reason and "'abc'" in reason, reason
    assert payload == bad_type["line"]
    bad_type_id = flight_id(bad_type["line"], TYPE_AND_TRUNCATION_DAY)
    assert query("select count(*) from silver.flights where flight_id = ?", [bad_type_id]) == [(0,)]

    # A truncated last line: malformed, at the file's last line number, payload as cut.
    _, rule, reason, _, _, payload = quarantined_at(TYPE_AND_TRUNCATION_DAY, truncated_number)
    assert rule == "malformed_line"
    assert "missing columns: expected 19 fields" in reason, reason
    assert payload == truncated_line
    assert query("select count(*) from silver.flights where flight_id = ?", [truncated_id]) == [(0,)]

    # An exact duplicate line: dropped and counted; silver keeps the first line only.
    assert query(
        "select duplicates_dropped from silver.load_audit where landing_date = ? and dataset = 'flights'",
        [DUPLICATES_DAY],
    ) == [(1,)]
    assert query(
        "select source_line_number from silver.flights where flight_id = ?", [copied_id]
    ) == [(copied_index + 1,)]

    # Same key, different content: the later line is quarantined, the first delivery stays in silver.
    _, rule, reason, _, _, payload = quarantined_at(DUPLICATES_DAY, conflicting_number)
    assert rule == "conflicting_duplicate"
    assert conflicted_id in reason and f"line {conflicted_index + 1}" in reason, reason
    assert payload == conflicting_line
    assert query(
        "select source_line_number, dep_delay from silver.flights where flight_id = ?", [conflicted_id]
    ) == [(conflicted_index + 1, original_dep_delay)]

    # A blank line: kept in bronze with its line number, quarantined as malformed; the next
    # line keeps its true physical number all the way to silver.
    blank_file = f"landing/flights/{BLANK_LINE_DAY}.csv"
    assert query(
        "select raw_line, parse_error from bronze.flights where source_file = ? and source_line_number = ?",
        [blank_file, blank_index + 1],
    ) == [("", "blank line")]
    _, rule, _, _, _, payload = quarantined_at(BLANK_LINE_DAY, blank_index + 1)
    assert (rule, payload) == ("malformed_line", "")
    assert query(
        "select raw_line, parse_error from bronze.flights where source_file = ? and source_line_number = ?",
        [blank_file, after_blank["number"]],
    ) == [(after_blank["line"], None)]
    assert query(
        "select source_line_number from silver.flights where flight_id = ?",
        [flight_id(after_blank["line"], BLANK_LINE_DAY)],
    ) == [(after_blank["number"],)]
    assert query(
        "select max(source_line_number) from bronze.flights where source_file = ?", [blank_file]
    ) == [(blank_day_line_count,)]

    # Conservation: every landed line is in bronze, and every bronze row is kept, quarantined or dropped.
    audit = query(
        "select landing_date::varchar, dataset, bronze_rows, silver_rows, quarantined_rows, duplicates_dropped "
        "from silver.load_audit order by all"
    )
    landed = {
        (day, dataset): paths.landing_day_file(dataset, day)
        for day in DAYS
        for dataset in ("flights", "weather")
        if paths.landing_day_file(dataset, day).exists()
    }
    assert [(day, dataset) for day, dataset, *_ in audit] == sorted(landed)  # 4 flights + 3 weather
    expected_losses = {  # (quarantined, dropped) per flights day; weather files are untouched
        TYPE_AND_TRUNCATION_DAY: (2, 0),
        DUPLICATES_DAY: (1, 1),
        BLANK_LINE_DAY: (1, 0),
        NO_WEATHER_DAY: (0, 0),
    }
    for day, dataset, bronze, silver, quarantined_rows, dropped in audit:
        assert bronze == physical_data_lines(landed[day, dataset]), (day, dataset)
        assert bronze == silver + quarantined_rows + dropped, (day, dataset)
        assert (quarantined_rows, dropped) == (expected_losses[day] if dataset == "flights" else (0, 0)), (day, dataset)
        table_rows = query(f"select count(*) from bronze.{dataset} where landing_date = ?", [day])[0][0]
        assert table_rows == bronze, (day, dataset)

    # No weather file for a day: the run succeeded, and the day's flights get no weather once the
    # latest observation at their origin (the previous evening) is more than 3 hours before p.
    assert query("select max(obs_date)::varchar from silver.weather") == [(BLANK_LINE_DAY,)]
    latest_obs = dict(query("select origin, max(obs_ts) from silver.weather group by origin"))
    features = query(
        f"select origin, prediction_ts, {', '.join(WEATHER_COLUMNS)} from gold.flight_features "
        "where flight_date = ?",
        [NO_WEATHER_DAY],
    )
    assert len(features) == physical_data_lines(flights[NO_WEATHER_DAY])
    stale = [row for row in features if row[1] > latest_obs[row[0]] + timedelta(hours=3)]
    assert len(stale) == len(features)  # the earliest prediction time is hours after the last evening hour
    assert all(value is None for row in stale for value in row[2:])
    # ...while the day before, with its weather file, has weather for its flights.
    assert query(
        "select count(*) = count(temp_f) from gold.flight_features where flight_date = ?", [BLANK_LINE_DAY]
    ) == [(True,)]


# A 10-day backfill through the command line, with faults of every kind on some days.
TEN_DAYS = ("2013-05-01", "2013-05-10")
DAMAGED_DAY = "2013-05-02"  # flights: a dep_delay that is no number: the line is quarantined
BENIGN_HEADER_DAY = "2013-05-03"  # weather: columns reordered and upper-cased, a BOM, CRLF line ends
NOT_UTF8_DAY = "2013-05-06"  # flights: one latin-1 byte: the file cannot be read


@pytest.mark.pipeline
@pytest.mark.slow
def test_a_file_that_cannot_be_read_fails_its_day_only_and_no_landed_file_is_changed(paths, dagster_home, capsys):
    """`backfill` never rewrites a landed file; a file it cannot read is rejected with the place of
    the fault, fails its day's checks with ERROR and alerts, and its day's later layers fail,
    while the nine other days are materialized; benign header variations are read by name."""
    from sensors.alerts import collect_alerts
    from tarmac.orchestration.instance import dagster_instance
    from tools.cli import main

    days = days_between(*TEN_DAYS)
    fill_landing_zone(paths, days)
    damaged = paths.landing_day_file("flights", DAMAGED_DAY)
    lines = read_lines(damaged)
    bad_index = departed_line_index(lines, 5)
    fields = lines[bad_index].split(",")
    fields[DEP_DELAY] = "abc"
    lines[bad_index] = ",".join(fields)
    write_lines(damaged, lines)

    benign = paths.landing_day_file("weather", BENIGN_HEADER_DAY)
    weather_rows = [line.split(",") for line in read_lines(benign)]
    order = list(reversed(range(len(weather_rows[0]))))
    reordered = [",".join(row[i] for i in order) for row in weather_rows]
    reordered[0] = reordered[0].upper()
    benign.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(reordered) + "\r\n").encode())

    not_utf8 = paths.landing_day_file("flights", NOT_UTF8_DAY)
    raw = not_utf8.read_bytes().split(b"\n")
    raw[6] = raw[6][:12] + b"\xe9" + raw[6][13:]  # the 7th physical line's 13th byte
    not_utf8.write_bytes(b"\n".join(raw))
    bad_offset = sum(len(line) + 1 for line in raw[:6]) + 12
    landed = {p: p.read_bytes() for p in paths.landing.rglob("*.csv")}

    assert main(["backfill", "--start", TEN_DAYS[0], "--end", TEN_DAYS[1], "--in-process"]) == 1
    output = capsys.readouterr().out

    # the landing zone is upstream's log: every landed file is byte for byte as delivered
    assert {p: p.read_bytes() for p in paths.landing.rglob("*.csv")} == landed
    assert "0 files written, 23 already landed" in output, output
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        # the damage of a readable file is quarantined with its place
        assert con.execute(
            "select rule, source_line_number from silver.quarantine where landing_date = ?", [DAMAGED_DAY]
        ).fetchall() == [("invalid_type", bad_index + 1)]
        # the unreadable file: recorded, with the line and byte of the fault, nothing of it loaded
        assert con.execute(
            "select landing_date::varchar, dataset, source_file, file_checksum, line_number, byte_offset, reason "
            "from bronze.rejected_files"
        ).fetchall() == [(
            NOT_UTF8_DAY, "flights", f"landing/flights/{NOT_UTF8_DAY}.csv", hashlib.md5(landed[not_utf8]).hexdigest(),
            7, bad_offset,
            f"not UTF-8 text: byte 0xE9 at byte offset {bad_offset} (line 7, byte 12 of that line) is not valid UTF-8",
        )]
        assert con.execute("select count(*) from bronze.flights where landing_date = ?", [NOT_UTF8_DAY]).fetchone() == (0,)
        # the day read by name has every observation, typed as on any other day
        assert con.execute(
            "select silver_rows, quarantined_rows from silver.load_audit where landing_date = ? and dataset = 'weather'",
            [BENIGN_HEADER_DAY],
        ).fetchall() == [(len(weather_rows) - 1, 0)]
        assert con.execute(
            "select count(*), count(temp) from silver.weather where obs_date = ?", [BENIGN_HEADER_DAY]
        ).fetchone() == (len(weather_rows) - 1, len(weather_rows) - 1)
        built = {d for (d,) in con.execute("select distinct flight_date::varchar from gold.flight_features").fetchall()}
    good_days = [d for d in days if d != NOT_UTF8_DAY]
    assert built == set(good_days)

    with dagster_instance() as instance:
        from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

        daily = [k for k in instance.get_asset_keys() if k.path[0] in ("silver", "gold") or k == dg.AssetKey(["online", "flights"])]
        for key in [*daily, dg.AssetKey(["bronze", "flights"])]:
            if key.path[-1] in ("planes", "airports", "airlines", "reference_quarantine"):
                continue
            materialized = instance.get_materialized_partitions(key)
            assert set(good_days) <= materialized, key
            if key.path[0] != "bronze":
                assert NOT_UTF8_DAY not in materialized, key
                status = get_and_update_asset_status_cache_value(instance, key, daily_partitions)
                assert status.deserialize_failed_partition_subsets(daily_partitions).get_partition_keys() == [NOT_UTF8_DAY], key
        # the bad day's check failed with ERROR, naming the file and the fault, and alerts
        alerts, _ = collect_alerts(instance, None)
    failed = [a for a in alerts if a["kind"] == "check_failed" and a["check_name"] == "schema" and a["partition"]]
    # the quarantined line makes its day's bronze contract warn (in the first run and the re-run of
    # its range); the unreadable file is an error, evaluated once
    assert sorted({(a["asset_key"], a["partition"], a["severity"]) for a in failed}) == [
        ("bronze/flights", DAMAGED_DAY, "WARN"), ("bronze/flights", NOT_UTF8_DAY, "ERROR")
    ]
    (rejected,) = [a for a in failed if a["severity"] == "ERROR"]
    assert rejected["description"].startswith(f"landing file landing/flights/{NOT_UTF8_DAY}.csv was rejected")
    assert f"byte offset {bad_offset} (line 7" in rejected["description"]


@pytest.mark.pipeline
def test_a_run_held_back_by_one_day_is_requested_again_for_the_other_days(paths, instance):
    """A run from the UI or a sensor (no backfill process of its own to re-run it) that one day's
    unreadable file stopped: held_back_days_sensor requests its assets again for the other days,
    once; a run that failed for another reason is left alone."""
    from definitions import defs
    from sensors.held_back import held_back_days_sensor, rerun_requests
    from tools.pipeline import checks_for, stage_assets

    days = days_between("2013-05-13", "2013-05-16")
    fill_landing_zone(paths, days)
    paths.landing_day_file("weather", days[1]).write_bytes(b"\x00\xff binary, not a delivery\n")
    daily = stage_assets(defs, partitioned=True, ml=False)
    unpartitioned = stage_assets(defs, partitioned=False, ml=False)
    assert dg.materialize([*unpartitioned, *checks_for(defs, unpartitioned)], instance=instance,
                          resources=defs.resources).success
    result = dg.materialize(
        [*daily, *checks_for(defs, daily)], instance=instance, resources=defs.resources, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
    )
    assert not result.success

    tick = held_back_days_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
              for r in tick.run_requests]
    assert ranges == [(days[0], days[0]), (days[2], days[3])]
    daily_keys = {key for assets_def in daily for key in assets_def.keys}
    assert all(set(r.asset_selection) == daily_keys for r in tick.run_requests)
    # the next tick has nothing new: each failed run is split once
    again = held_back_days_sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=tick.cursor))
    assert not again.run_requests

    # a run that failed on an error of its own is no day's fault: not split
    @dg.asset(partitions_def=daily_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def boom() -> None:
        raise RuntimeError("a bug, not a bad day")

    broken = dg.materialize([boom], instance=instance, raise_on_error=False, tags={
        "dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]})
    assert not broken.success
    assert rerun_requests(instance, instance.get_run_by_id(broken.run_id)) == []
