"""POST /events: pushed events go through the speed layer the server hosts, once per event id,
late ones counted; a restarted server rebuilds the same values from the push log; and a real day
pushed event by event gives gold's features for every flight of it."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.push import PushHost, as_pushed
from tarmac.online.batch import flight_records, plane_records
from tarmac.online.events import FIELDS, Event, from_us, silver_events, validate
from tarmac.online.parity import differs
from tarmac.online.retrieval import FLIGHT, PLANE
from tarmac.online.store import SqliteOnlineStore
from tarmac.settings.online import OnlineSettings
from tests.serving_data import END, EVENTS, EXPECTED, FLIGHT_ID, MIN, RECORD, START, P

PUSH = OnlineSettings(stream="push")


def pushed_app(store, paths):
    store.put_records(PLANE, {"N100AA": {"year": 2003, "seats": 150}}, group="all")
    store.put_records(FLIGHT, {FLIGHT_ID: RECORD}, group="2013-06-09")
    return TestClient(create_app(PUSH, paths, store=store, horizon_minutes=120, push=PushHost(PUSH, paths)))


def _approx(values: dict) -> dict:
    return {k: pytest.approx(v, abs=1e-12) if isinstance(v, float) else v for k, v in values.items()}


def test_push_is_idempotent_by_event_id_and_counts_late_events(online_store, paths):
    history = [as_pushed(Event("departure", START + 1, "LGA", "ORD", "AA", dep_delay=0.0), "history")]
    events = [as_pushed(e, f"e{i}") for i, e in enumerate(EVENTS)]
    with pushed_app(online_store, paths) as client:
        first = client.post("/events", json={"events": history + events, "watermark": from_us(END).isoformat()})
        assert first.status_code == 200, first.text
        assert first.json() == {"received": 7, "applied": 7, "duplicates": 0, "late": 0, "late_ignored": 0,
                                "watermark": from_us(END).isoformat()}
        vector = client.get(f"/features/{FLIGHT_ID}").json()
        assert vector["source"] == "stream" and vector["features"] == _approx(EXPECTED)  # the replay's values
        # the same request again (a retry whose answer was lost): nothing applied, nothing changed
        again = client.post("/events", json={"events": events, "watermark": from_us(END).isoformat()}).json()
        assert again == {**first.json(), "received": 6, "applied": 0, "duplicates": 6}
        assert client.get(f"/features/{FLIGHT_ID}").json() == vector
        # twice in one request: the first is applied
        twice = as_pushed(Event("departure", END + MIN, "LGA", "ORD", "AA", dep_delay=3.0), "twice")
        assert client.post("/events", json={"events": [twice, twice]}).json()["duplicates"] == 1
        # late: before the watermark, applied from the watermark on; what was answered for p stays
        late = as_pushed(Event("departure", P - 20 * MIN, "LGA", "ORD", "AA", dep_delay=600.0), "late")
        answer = client.post("/events", json={"events": [late], "watermark": from_us(END + MIN).isoformat()}).json()
        assert answer["late"] == 1 and answer["applied"] == 1
        assert answer["late_ignored"] == 1  # its 1-hour window at LGA had closed by the watermark (p + 1 h)
        assert client.get(f"/features/{FLIGHT_ID}").json()["features"] == vector["features"]
        after = client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(END + MIN).isoformat()}).json()
        assert after["features"]["carrier_dep_delay_avg_24h"] == pytest.approx((40 + 10 + 20 + 90 + 3 + 600) / 6)
        # so late that it left every window before the watermark: counted per window it skipped
        stale = as_pushed(Event("departure", START + 2, "LGA", "ORD", "AA", dep_delay=1.0), "stale")
        assert client.post("/events", json={"events": [stale]}).json()["late_ignored"] == 3
        metrics = client.get("/metrics").text
    assert 'tarmac_push_events_total{kind="departure",outcome="duplicate"} 5.0' in metrics
    assert 'tarmac_push_events_total{kind="departure",outcome="late"} 2.0' in metrics
    assert "_created" not in metrics


def test_a_restarted_server_rebuilds_the_same_values_from_the_push_log(online_store, paths):
    events = [as_pushed(e, f"e{i}") for i, e in enumerate(EVENTS)]
    history = [as_pushed(Event("departure", START + 1, "LGA", "ORD", "AA", dep_delay=0.0), "history")]
    late = as_pushed(Event("departure", P - 20 * MIN, "LGA", "ORD", "AA", dep_delay=600.0), "late")
    with pushed_app(online_store, paths) as client:
        client.post("/events", json={"events": history + events, "watermark": from_us(P).isoformat()})
        client.post("/events", json={"events": [late], "watermark": from_us(END).isoformat()})
        before = [client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(t).isoformat()}).json()
                  for t in (P, P + 30 * MIN, END)]
        watermark = client.get("/health").json()["watermark"]
    online_store.begin_stream(0)  # what a crash could leave: the histories gone, the log kept
    with pushed_app(online_store, paths) as client:
        after = [client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(t).isoformat()}).json()
                 for t in (P, P + 30 * MIN, END)]
        assert after == before and client.get("/health").json()["watermark"] == watermark
        assert client.post("/events", json={"events": [late]}).json()["duplicates"] == 1  # still known


def test_a_server_that_does_not_host_the_speed_layer_refuses_pushes(paths, tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.sqlite")
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)) as client:
        refused = client.post("/events", json={"events": [as_pushed(EVENTS[0], "x")]})
    store.close()
    assert refused.status_code == 409 and "online.stream: push" in refused.json()["detail"]


@pytest.mark.parametrize(
    "change, location",
    [
        ({"kind": "arrival"}, "body.events.0"),
        ({"origin": "BOS"}, "body.events.0.departure.origin"),
        ({"event_id": "has space"}, "body.events.0.departure.event_id"),
        ({"ts": "2013-06-09T10:00:00"}, "body.events.0.departure.ts"),
        ({"dep_delay": "late"}, "body.events.0.departure.dep_delay"),
        ({"temp": 70.0}, "body.events.0.departure.temp"),  # a weather field on a departure
    ],
)
def test_a_malformed_event_refuses_the_request_and_applies_nothing(online_store, paths, change, location):
    good = as_pushed(EVENTS[0], "good")
    with pushed_app(online_store, paths) as client:
        response = client.post("/events", json={"events": [{**good, **change}, good]})
        assert response.status_code == 422 and response.json()["errors"][0]["location"] == location, response.text
        assert online_store.pushed() == [] and client.get("/health").json()["watermark"] is None
        nan = client.post("/events", content=b'{"events": [{"kind": "departure", "event_id": "n", "ts": '
                          b'"2013-06-09T10:00:00Z", "origin": "LGA", "dest": "ORD", "carrier": "AA", "dep_delay": NaN}]}',
                          headers={"content-type": "application/json"})
        assert nan.status_code == 422  # JSON has no NaN; a running sum must never hold one


@pytest.mark.slow
def test_a_real_day_pushed_event_by_event_equals_gold(real_days, tmp_path):
    """2013-03-12 with the week before it as history, pushed in requests of 1,000 events as a
    producer would send them, each with the watermark it has reached; then every flight of the
    day, read through the API as of its prediction time, against gold."""
    day, paths = "2013-03-12", real_days.paths
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        flights = flight_records(con, day, "2013-03-13")
        planes = plane_records(con)
        first = min(pd.Timestamp(r["prediction_ts"]) for r in flights.values())
        last = max(pd.Timestamp(r["prediction_ts"]) for r in flights.values())
        events = silver_events(con, first - pd.Timedelta(days=7, hours=1), last)
    # the day's real events keep the rules a stream's entries are held to, as the push contract's
    assert [validate(dict(zip(FIELDS, e, strict=True))) for e in events] == events
    store = SqliteOnlineStore(tmp_path / "online.sqlite")
    store.put_records(PLANE, planes, group="all")
    store.put_records(FLIGHT, flights, group=day)
    app = create_app(PUSH, paths, store=store, push=PushHost(PUSH, paths))
    with TestClient(app) as client:
        for i in range(0, len(events), 1000):
            batch = events[i:i + 1000]
            body = {"events": [as_pushed(e, f"{e.kind}-{i + j}") for j, e in enumerate(batch)]}
            if i + 1000 >= len(events):
                body["watermark"] = from_us(batch[-1].ts_us).isoformat()  # the producer is done up to there
            answer = client.post("/events", json=body)
            assert answer.status_code == 200 and answer.json()["late"] == 0, answer.text
        assert len(store.pushed()) == len(events) + 1
        results = []
        ids = sorted(flights)
        for i in range(0, len(ids), 100):
            reply = client.post("/features", json={"flights": [{"flight_id": f} for f in ids[i:i + 100]],
                                                   "service": "all"}).json()
            results += reply["results"]
    store.close()
    assert len(results) == len(flights) > 800
    mismatches = {}
    for item in results:
        assert item["status"] == 200 and item["vector"]["source"] == "stream", item
        batch = flights[item["flight_id"]]["batch"]
        wrong = {n: (v, batch[n]) for n, v in item["vector"]["features"].items() if differs(v, batch[n], 1e-9)}
        if wrong:
            mismatches[item["flight_id"]] = wrong
    assert not mismatches, list(mismatches.items())[:5]
