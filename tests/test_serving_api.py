"""The serving API over both online stores (SQLite, and a real Redis when the services run), and
the Redis Stream path of the speed layer: values, provenance, and a 4xx with a reason for each
kind of bad request."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assets.ml.feature_registry import model_features
from assets.online.events import Event, RedisEventStream, from_us, to_us
from assets.online.retrieval import FLIGHT, PLANE
from assets.online.runner import run_speed_layer
from assets.online.speed_layer import SpeedLayer
from assets.online.store import RedisOnlineStore, SqliteOnlineStore
from resources.online_settings import OnlineSettings
from serving.api import create_app

MIN = 60_000_000
SCHED = pd.Timestamp("2013-06-09 16:30", tz="UTC")  # 12:30 in New York
P = to_us(SCHED) - 120 * MIN  # prediction_ts at the default 2 h horizon
FLIGHT_ID = "AA-100-LGA-20130609"

EVENTS = [
    Event("departure", P - 90 * MIN, "LGA", "ORD", "AA", dep_delay=40.0),
    Event("weather", P - 50 * MIN, "LGA", temp=70.0, wind_speed=11.5, visib=10.0, precip=0.0, humid=60.0),
    Event("departure", P - 30 * MIN, "LGA", "ORD", "AA", dep_delay=10.0),
    Event("cancellation", P - 10 * MIN, "LGA", "BOS", "DL"),
    Event("departure", P, "LGA", "ORD", "AA", dep_delay=20.0),  # at p: inside (p - w, p]
    Event("departure", P + 5 * MIN, "LGA", "ORD", "AA", dep_delay=90.0),  # after p: never in p's features
]
# by hand, as of p
EXPECTED = {
    "carrier": "AA", "origin": "LGA", "dest": "ORD", "distance_mi": 733, "dep_hour_local": 12,
    "day_of_week": 7, "month": 6,
    "origin_dep_delay_avg_1h": 15.0, "origin_departures_1h": 2, "origin_cancelled_3h": 1,
    "carrier_dep_delay_avg_24h": 70.0 / 3, "route_dep_delay15_rate_7d": 2 / 3,
    "temp_f": 70.0, "wind_speed_mph": 11.5, "visib_mi": 10.0, "precip_in": 0.0, "humid": 60.0,
    "plane_age_years": 10, "plane_seats": 150,
}  # fmt: skip
RECORD = {
    "flight_id": FLIGHT_ID, "flight_date": "2013-06-09", "year": 2013, "month": 6, "hour": 12, "carrier": "AA",
    "flight": 100, "origin": "LGA", "dest": "ORD", "tailnum": "N100AA", "distance": 733,
    "sched_dep_ts": SCHED.isoformat(), "prediction_ts": from_us(P).isoformat(),
}  # fmt: skip
START, END = P - 8 * 24 * 60 * MIN, P + 60 * MIN  # values are exact from START + 7 days on


@pytest.fixture
def store(online_store):
    """Both backends, holding EVENTS' windows, the plane, the flight and an older one."""
    store = online_store
    run_speed_layer([EVENTS], store, start_us=START, end_us=END)
    store.put_records(PLANE, {"N100AA": {"year": 2003, "seats": 150}}, group="all")
    old = {**RECORD, "flight_id": "AA-100-LGA-20130531", "flight_date": "2013-05-31",
           "prediction_ts": "2013-05-31T14:30:00+00:00", "batch": {"origin_departures_1h": 7}}
    store.put_records(FLIGHT, {FLIGHT_ID: RECORD}, group="2013-06-09")
    store.put_records(FLIGHT, {old["flight_id"]: old}, group="2013-05-31")
    return store


@pytest.fixture
def client(store, paths):
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)) as client:
        yield client


class RecordingModel:
    """A stand-in champion: answers 0.75 and keeps what it was given."""

    def __init__(self):
        self.inputs = []

    def predict_proba(self, frame):
        self.inputs.append(frame)
        return np.tile([0.25, 0.75], (len(frame), 1))


class StubChampion:
    def __init__(self, model):
        self.model = model

    def get(self):
        return "tarmac-flight-delay", "3", self.model


def _approx(values: dict) -> dict:
    return {k: pytest.approx(v, abs=1e-12) if isinstance(v, float) else v for k, v in values.items()}


def test_features_as_of_the_prediction_time_and_of_another_instant(client):
    body = client.get(f"/features/{FLIGHT_ID}").json()
    assert body["source"] == "stream" and body["as_of"] == from_us(P).isoformat()
    assert body["features"] == _approx(EXPECTED)
    assert list(body["features"]) == model_features()
    later = client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(P + 5 * MIN).isoformat()}).json()
    assert later["features"]["origin_departures_1h"] == 3  # the 90-minute departure is in now
    edt = client.get(f"/features/{FLIGHT_ID}", params={"as_of": "2013-06-09T10:30:00-04:00"}).json()
    assert edt["as_of"] == from_us(P).isoformat() and edt["features"] == body["features"]
    health = client.get("/health").json()
    assert health["watermark"] == from_us(END).isoformat() and health["flights"] == 2


def test_bad_feature_requests_get_a_4xx_with_the_reason(client):
    def detail(response, status):
        assert response.status_code == status, response.text
        return response.json()["detail"]

    assert "not a flight id" in detail(client.get("/features/AA100"), 422)
    assert "not in the online store" in detail(client.get("/features/AA-101-LGA-20130609"), 404)
    assert "no time zone" in detail(client.get(f"/features/{FLIGHT_ID}", params={"as_of": "2013-06-09T10:30"}), 422)
    assert "not an ISO 8601" in detail(client.get(f"/features/{FLIGHT_ID}", params={"as_of": "yesterday"}), 422)
    assert "after the speed layer's watermark" in detail(
        client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(END + 1).isoformat()}), 409)
    assert "before" in detail(client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(START).isoformat()}), 409)
    # a flight before the stream's coverage: its batch vector answers for its prediction time only
    old = client.get("/features/AA-100-LGA-20130531").json()
    assert old["source"] == "batch" and old["features"] == {"origin_departures_1h": 7}
    assert client.get("/features/AA-100-LGA-20130531", params={"as_of": "2013-05-31T14:00:00Z"}).status_code == 409


PREDICT = {"carrier": "AA", "flight": 100, "origin": "LGA", "dest": "ORD", "sched_dep_ts": "2013-06-09T12:30:00-04:00",
           "tailnum": "N100AA", "distance": 733}  # fmt: skip


def test_predict_scores_the_online_features_with_the_champion(client):
    model = RecordingModel()
    client.app.state.champion = StubChampion(model)
    body = client.post("/predict", json=PREDICT).json()
    assert body["delay_probability"] == 0.75 and body["model_version"] == "3"
    assert body["flight_id"] == FLIGHT_ID and body["prediction_ts"] == from_us(P).isoformat()
    assert body["features"] == _approx(EXPECTED)
    given = model.inputs[0].iloc[0].to_dict()
    assert list(model.inputs[0].columns) == model_features()
    assert given["route_dep_delay15_rate_7d"] == pytest.approx(2 / 3) and given["origin"] == "LGA"
    unknown_plane = client.post("/predict", json={**PREDICT, "tailnum": "N999ZZ"}).json()["features"]
    assert unknown_plane["plane_age_years"] is None and unknown_plane["plane_seats"] is None


@pytest.mark.parametrize(
    "change, status, reason",
    [
        ({"origin": "BOS"}, 422, "not an origin the model knows"),
        ({"carrier": "american"}, 422, "String should match pattern"),
        ({"sched_dep_ts": "2013-06-09T12:30:00"}, 422, "timezone"),
        ({"flight": "one hundred"}, 422, "valid integer"),
        ({"distance": -5}, 422, "greater than or equal to 1"),
        ({"as_of": "2013-06-09T15:00:00Z"}, 422, "after the prediction time"),
        ({"sched_dep_ts": "2013-06-20T12:30:00-04:00"}, 409, "after the speed layer's watermark"),
    ],
)
def test_bad_predict_requests_get_a_4xx_with_the_reason(client, change, status, reason):
    client.app.state.champion = StubChampion(RecordingModel())
    response = client.post("/predict", json={**PREDICT, **change})
    assert response.status_code == status, response.text
    assert reason in str(response.json()["detail"])


def test_predict_without_a_champion_is_unavailable(client):
    response = client.post("/predict", json=PREDICT)  # the test's data dir holds no model registry
    assert response.status_code == 503 and "champion" in response.json()["detail"]


def test_redis_stream_feeds_the_same_values_as_the_in_process_replay(redis_client, tmp_path):
    client = redis_client
    prefix = f"tarmac-test-{uuid.uuid4().hex[:10]}"
    stream = RedisEventStream(client, f"{prefix}:events")
    redis_store = RedisOnlineStore(client, prefix)
    try:
        assert stream.publish(EVENTS) == len(EVENTS)
        report = run_speed_layer(stream.read(count=2), redis_store, start_us=START)
        assert report.events == len(EVENTS)
        # a live stream may still bring events of its latest instant: the watermark stays just before it
        assert redis_store.coverage().watermark_us == EVENTS[-1].ts_us - 1
        replayed = SqliteOnlineStore(tmp_path / "replay.sqlite")
        run_speed_layer([EVENTS], replayed, start_us=START)
        layer = SpeedLayer()
        slots = [(f, k) for f in layer.features for k in ("LGA", "AA", "LGA|ORD", "LGA|BOS")]
        for at in range(P - 100 * MIN, P + 6 * MIN, MIN):
            assert redis_store.read(slots, at) == replayed.read(slots, at), from_us(at)
        # a restarted speed layer reads the stream from its first entry and rebuilds the same windows
        run_speed_layer(stream.read(), redis_store, start_us=START)
        assert redis_store.read(slots, P) == replayed.read(slots, P)
    finally:
        redis_store.clear()
        assert not list(client.scan_iter(match=f"{prefix}*"))
