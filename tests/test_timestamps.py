"""Local times become the right UTC instants, across both 2013 daylight-saving switches in New York
(2013-03-10: 02:00 EST jumps to 03:00 EDT; 2013-11-03: 01:00-01:59 happens twice), and HHMM 2400
is the end of the day."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
SPRING_FORWARD, FALL_BACK = "2013-03-10", "2013-11-03"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_local_times_become_utc_across_daylight_saving_switches(real_days):
    """sched_dep_ts, dep_ts and obs_ts are the true UTC instants of the local times upstream sent."""
    query = real_days.query  # its days hold 03-09..03-11 and 10-30..11-04 (a departure at HHMM 2400)

    # Every flight of both switch days: sched_dep_ts is its local date and time in New York.
    for day in (SPRING_FORWARD, FALL_BACK):
        flights = query(
            "select flight_id, year, month, day, hour, minute, sched_dep_ts from silver.flights "
            "where flight_date = ?",
            [day],
        )
        assert len(flights) == query("select count(*) from bronze.flights where landing_date = ?", [day])[0][0]
        assert len(flights) > 900
        for flight_id, year, month, dom, hour, minute, sched_dep_ts in flights:
            local = datetime(year, month, dom, hour, minute, tzinfo=NEW_YORK)
            assert sched_dep_ts == local.astimezone(UTC), flight_id

    # By hand: 06:00 local is 10:00 UTC on the spring day (EDT) and 11:00 UTC on the autumn day (EST).
    assert query(
        "select sched_dep_ts from silver.flights where flight_id = 'DL-461-LGA-20130310'"
    ) == [(utc("2013-03-10 10:00"),)]
    assert query(
        "select sched_dep_ts from silver.flights where flight_id = 'UA-303-JFK-20131103'"
    ) == [(utc("2013-11-03 11:00"),)]

    # The local hour 01 of 2013-11-03 happens twice: both observations of each origin are kept.
    assert sorted(query(
        "select origin, obs_ts from silver.weather where obs_date = ? and obs_hour_local = 1", [FALL_BACK]
    )) == [(origin, utc(f"2013-11-03 {h}:00")) for origin in ("EWR", "JFK", "LGA") for h in ("05", "06")]
    # ...and every observation of both days is at its local date and hour in New York.
    observations = query(
        "select obs_date::varchar, obs_hour_local, obs_ts from silver.weather where obs_date in (?, ?)",
        [SPRING_FORWARD, FALL_BACK],
    )
    assert len(observations) > 60
    for obs_date, hour, obs_ts in observations:
        local = obs_ts.astimezone(NEW_YORK)
        assert (local.date().isoformat(), local.hour, local.minute) == (obs_date, hour, 0), obs_ts

    # dep_ts is sched_dep_ts plus dep_delay minutes, for every flight that departed.
    departed = query(
        "select flight_id, sched_dep_ts, dep_delay, dep_ts, cancelled from silver.flights"
    )
    assert sum(1 for *_, cancelled in departed if not cancelled) > 5000
    for flight_id, sched_dep_ts, dep_delay, dep_ts, cancelled in departed:
        if cancelled or dep_delay is None:  # no departure, or an impossible delay that silver nulled
            assert dep_ts is None, flight_id
        else:
            assert dep_ts == sched_dep_ts + timedelta(minutes=dep_delay), flight_id

    # HHMM 2400 is the end of the local day: minute 1440, one minute after the 23:59 schedule.
    assert query(
        "select flight_id, dep_time, dep_minute_local, sched_dep_ts, dep_ts from silver.flights "
        "where dep_time = 2400 and flight_date between '2013-10-30' and '2013-11-04'"
    ) == [("B6-839-JFK-20131030", 2400, 1440, utc("2013-10-31 03:59"), utc("2013-10-31 04:00"))]
