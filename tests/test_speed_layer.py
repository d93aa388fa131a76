"""The speed layer on hand-made streams: window edges, expiry without new events, late and
out-of-order events, and the online store's step-function reads, on both backends."""

from __future__ import annotations

import pandas as pd

from tarmac.online.events import Event, to_us
from tarmac.online.runner import run_speed_layer
from tarmac.online.speed_layer import SpeedLayer

MIN = 60_000_000
T0 = to_us(pd.Timestamp("2013-06-09 12:00", tz="UTC"))


def departure(minute: int, delay: float, origin="LGA", dest="ORD", carrier="AA") -> Event:
    return Event("departure", T0 + minute * MIN, origin, dest, carrier, dep_delay=delay)


def weather(minute: int, origin="LGA", temp=70.0, wind_speed=10.0) -> Event:
    return Event("weather", T0 + minute * MIN, origin, temp=temp, wind_speed=wind_speed, visib=10.0, precip=0.0, humid=50.0)


def values_at(changes, feature: str, key: str, at_us: int):
    """The step function's value at an instant: the latest change at or before it."""
    found = [c for c in changes if c.feature == feature and c.entity_key == key and c.as_of_us <= at_us]
    return max(found, key=lambda c: c.as_of_us).value if found else "no record"


def test_an_event_enters_at_its_time_and_leaves_exactly_one_window_later():
    layer = SpeedLayer()
    layer.apply_all([departure(0, 10.0), departure(30, 20.0)])
    layer.advance_to(T0 + 120 * MIN)  # no events: the windows still move
    changes = layer.drain()
    mean, count = "origin_dep_delay_avg_1h", "origin_departures_1h"
    assert values_at(changes, mean, "LGA", T0 - 1) == "no record"
    assert values_at(changes, count, "LGA", T0) == 1  # (p - 1h, p] holds an event at p
    assert values_at(changes, mean, "LGA", T0 + 30 * MIN) == 15.0
    assert values_at(changes, mean, "LGA", T0 + 60 * MIN - 1) == 15.0
    assert values_at(changes, mean, "LGA", T0 + 60 * MIN) == 20.0  # the 12:00 event is at p - 1h: out
    assert values_at(changes, count, "LGA", T0 + 90 * MIN) == 0
    assert values_at(changes, mean, "LGA", T0 + 90 * MIN) is None
    # the route's 7-day rate and the carrier's 24 h mean still hold both
    assert values_at(changes, "route_dep_delay15_rate_7d", "LGA|ORD", T0 + 120 * MIN) == 0.5
    assert values_at(changes, "carrier_dep_delay_avg_24h", "AA", T0 + 120 * MIN) == 15.0


def test_weather_is_the_latest_observation_until_it_is_older_than_its_max_age():
    layer = SpeedLayer()
    layer.apply(weather(0, temp=70.0))
    layer.advance_to(T0 + 4 * 60 * MIN)
    changes = layer.drain()
    assert values_at(changes, "temp_f", "LGA", T0 + 180 * MIN) == 70.0  # exactly 3 h old: still used
    assert values_at(changes, "temp_f", "LGA", T0 + 180 * MIN + 1) is None
    assert values_at(changes, "temp_f", "JFK", T0) == "no record"


def test_late_and_out_of_order_events():
    layer = SpeedLayer()
    layer.apply(weather(60, temp=75.0))
    layer.apply(weather(0, temp=60.0))  # an older observation arriving late: the newer one stays
    layer.apply(departure(50, 30.0))  # late, but inside the window: counted from the watermark on
    layer.apply(departure(-120, 99.0))  # so late it has left the 1 h window; the 24 h one takes it
    changes = layer.drain()
    assert values_at(changes, "temp_f", "LGA", T0 + 60 * MIN) == 75.0
    assert values_at(changes, "origin_departures_1h", "LGA", T0 + 60 * MIN) == 1
    assert values_at(changes, "origin_dep_delay_avg_1h", "LGA", T0 + 60 * MIN) == 30.0
    assert values_at(changes, "carrier_dep_delay_avg_24h", "AA", T0 + 60 * MIN) == (30.0 + 99.0) / 2
    assert layer.stats.late_events == 3
    assert layer.stats.late_ignored == 2  # the old observation; the old departure in the 1 h window
    layer.advance_to(T0 + 110 * MIN)  # the late departure at 12:50 leaves at 13:50, not an hour after it arrived
    assert values_at(layer.drain(), "origin_departures_1h", "LGA", T0 + 110 * MIN) == 0


def test_a_cancellation_counts_at_its_scheduled_time_and_unknown_keys_are_skipped():
    layer = SpeedLayer()
    layer.apply(Event("cancellation", T0, "LGA", "ORD", "AA"))
    layer.apply(Event("departure", T0 + MIN, "LGA", None, "AA", dep_delay=5.0))  # no dest: no route key
    layer.advance_to(T0 + 180 * MIN)
    changes = layer.drain()
    assert values_at(changes, "origin_cancelled_3h", "LGA", T0 + 180 * MIN - 1) == 1
    assert values_at(changes, "origin_cancelled_3h", "LGA", T0 + 180 * MIN) == 0
    assert not [c for c in changes if c.feature == "route_dep_delay15_rate_7d"]
    assert values_at(changes, "carrier_dep_delay_avg_24h", "AA", T0 + MIN) == 5.0


def test_stores_read_the_step_function_and_trim_to_the_value_in_force(online_store):
    store = online_store
    events = [departure(m, float(m)) for m in range(0, 600, 20)]
    report = run_speed_layer([events], store, start_us=T0 - 1, end_us=T0 + 600 * MIN, flush_every=7)
    assert report.events == len(events)
    assert store.coverage().watermark_us == T0 + 600 * MIN
    slot = ("origin_dep_delay_avg_1h", "LGA")
    # at 12:30 the window (11:30, 12:30] holds the departures at 12:00 and 12:20
    assert store.read([slot], T0 + 30 * MIN) == {slot: 10.0}
    assert store.read([slot], T0 - 1) == {}
    store.trim(T0 + 300 * MIN)
    assert store.read([slot], T0 + 305 * MIN) == {slot: 280.0}  # minutes (245, 305]: 260, 280 and 300
    assert store.read([slot], T0 + 30 * MIN) == {}  # trimmed
    assert store.coverage().retained_from_us == T0 + 300 * MIN


def test_store_records_are_replaced_per_group(online_store):
    store = online_store
    store.put_records("flight", {"A": {"n": 1}, "B": {"n": 2}}, group="2013-06-09")
    store.put_records("flight", {"C": {"n": 3}}, group="2013-06-10")
    store.put_records("flight", {"A": {"n": 10}}, group="2013-06-09")  # a re-run of the day
    assert store.get_record("flight", "A") == {"n": 10}
    assert store.get_record("flight", "B") is None
    assert store.get_record("flight", "C") == {"n": 3}
    assert store.count_records("flight") == 2
