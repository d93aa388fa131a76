"""The serving API over both online stores (SQLite, and a real Redis when the services run), and
the Redis Stream path of the speed layer: values, provenance, a 4xx with a reason for each kind
of bad request (hostile ones included: times out of range, ids with a trailing newline, huge
bodies, missing tokens), and a clear error or a 503 when the store does not answer."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid

import anyio
import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from serving import __main__ as serving_main
from serving import api as serving_api
from serving.api import StartupError, create_app
from tarmac.features.registry import feature_versions, model_features
from tarmac.online.events import RedisEventStream, from_us
from tarmac.online.retrieval import FLIGHT, PLANE, open_online_store
from tarmac.online.runner import run_configured_speed_layer, run_speed_layer, stream_client
from tarmac.online.speed_layer import SpeedLayer
from tarmac.online.store import OnlineStore, RedisOnlineStore, Snapshot, SqliteOnlineStore
from tarmac.settings.online import OnlineSettings, ServeSettings
from tests.serving_data import (
    END,
    EVENTS,
    EXPECTED,
    FLIGHT_ID,
    MIN,
    START,
    P,
    RecordingModel,
    StubChampion,
    fill_store,
)


@pytest.fixture
def store(online_store):
    """Both backends, holding EVENTS' windows, the plane, the flight and an older one."""
    return fill_store(online_store)


@pytest.fixture
def client(store, paths):
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)) as client:
        yield client


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
    for as_of in ("2013-06-09T10:30", "2013-06-09T10:30:00", "yesterday", "2013-06-09 10:30:00Z"):  # no offset, no instant
        assert "is not an RFC 3339 instant with its offset" in detail(
            client.get(f"/features/{FLIGHT_ID}", params={"as_of": as_of}), 422)
    # the pattern admits it, the calendar does not
    assert "is not a date and time" in detail(
        client.get(f"/features/{FLIGHT_ID}", params={"as_of": "2013-02-30T10:30:00Z"}), 422)
    assert "after the speed layer's watermark" in detail(
        client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(END + 1).isoformat()}), 409)
    assert "before" in detail(client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(START).isoformat()}), 409)
    # a flight before the stream's coverage: its batch vector answers for its prediction time only
    old = client.get("/features/AA-100-LGA-20130531").json()
    assert old["source"] == "batch" and old["features"] == {"origin_departures_1h": 7}
    assert client.get("/features/AA-100-LGA-20130531", params={"as_of": "2013-05-31T14:00:00Z"}).status_code == 409


@pytest.mark.parametrize(
    "flight_id",
    [
        "AA-100-LGA-20130609%0A",  # a trailing newline: `$` alone let it through
        "AA-100-LGA-20130609%0Ajunk",
        "%20AA-100-LGA-20130609",
        "AA-%EF%BC%91%EF%BC%90%EF%BC%90-LGA-20130609",  # full-width digits are \d too
    ],
)
def test_a_flight_id_is_matched_whole(client, flight_id):
    response = client.get(f"/features/{flight_id}")
    assert response.status_code == 422, response.text
    assert "not a flight id" in response.json()["detail"]


@pytest.mark.parametrize(
    "as_of",
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+04:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-04:00",
     "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"],
)
def test_feature_times_outside_the_accepted_range_get_a_422(client, as_of):
    response = client.get(f"/features/{FLIGHT_ID}", params={"as_of": as_of})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("query.as_of: as_of ") and as_of in detail and "a year from 1970 to 2099" in detail
    # the years the schema admits, whatever the offset, are answered (here: before the store's history)
    for edge in ("1970-01-01T00:00:00+14:00", "2099-12-31T23:59:59.999999-12:00"):
        assert client.get(f"/features/{FLIGHT_ID}", params={"as_of": edge}).status_code == 409, edge
    # the request's fault is said before the store is asked for the flight
    assert client.get("/features/AA-101-LGA-20130609", params={"as_of": as_of}).status_code == 422


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
        ({"origin": "BOS"}, 422, "body.origin: Input should be 'EWR', 'JFK' or 'LGA' (got 'BOS')"),
        ({"carrier": "american"}, 422, "body.carrier: String should match pattern"),
        ({"sched_dep_ts": "2013-06-09T12:30:00"}, 422, "is not an RFC 3339 instant with its offset"),
        ({"flight": "one hundred"}, 422, "body.flight: Input should be a valid integer"),
        ({"flight": "100"}, 422, "body.flight: Input should be a valid integer"),  # no coercion: the schema says integer
        ({"flight": True}, 422, "body.flight: Input should be a valid integer"),
        ({"distance": -5}, 422, "greater than or equal to 1"),
        ({"lookback_minutes": -1}, 422, "body.lookback_minutes: Input should be greater than or equal to 0"),
        ({"as_of": "2013-06-09T08:00:00Z"}, 422, "body.as_of: Extra inputs are not permitted"),
        ({"sched_dep_ts": 1370795400}, 422, "sched_dep_ts 1370795400 is not an RFC 3339 instant"),
        ({"sched_dep_ts": "2013-06-20T12:30:00-04:00"}, 409, "after the speed layer's watermark"),
        # hostile values: whole-string patterns, and only the years the schema states
        ({"carrier": "AA\n"}, 422, "String should match pattern"),
        ({"dest": "ORD\n"}, 422, "String should match pattern"),
        ({"origin": "LGA\n"}, 422, "body.origin: Input should be 'EWR', 'JFK' or 'LGA'"),
        ({"sched_dep_ts": "0001-01-01T00:00:00Z"}, 422, "sched_dep_ts '0001-01-01T00:00:00Z' is not an RFC 3339"),
        ({"sched_dep_ts": "9999-12-31T23:59:59-04:00"}, 422, "a year from 1970 to 2099"),
        # the earliest the schema admits: its prediction time (sched_dep_ts - 2 h) is before the store's history
        ({"sched_dep_ts": "1970-01-01T00:00:00+14:00"}, 409, "before"),
    ],
)
def test_bad_predict_requests_get_a_4xx_with_the_reason(client, change, status, reason):
    client.app.state.champion = StubChampion(RecordingModel())
    response = client.post("/predict", json={**PREDICT, **change})
    assert response.status_code == status, response.text
    body = response.json()
    assert reason in body["detail"]
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    if status == 422:
        assert body["errors"] and all(e["location"].startswith("body.") for e in body["errors"])


def test_predict_without_a_champion_is_unavailable(client):
    response = client.post("/predict", json=PREDICT)  # the test's data dir holds no model registry
    assert response.status_code == 503 and "champion" in response.json()["detail"]


BIG = json.dumps({**PREDICT, "padding": "x" * 11_000_000}).encode()  # valid JSON: only its size is wrong


def _refused_as_too_large(response) -> str:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    return response.json()["detail"]


def test_a_body_over_the_limit_gets_a_413_before_it_is_parsed(client):
    client.app.state.champion = StubChampion(RecordingModel())
    with_length = client.post("/predict", content=BIG, headers={"content-type": "application/json"})
    assert "Content-Length 11,000,1" in _refused_as_too_large(with_length)
    assert "larger than the 262,144 bytes" in with_length.json()["detail"]
    chunks = (BIG[i:i + 65_536] for i in range(0, len(BIG), 65_536))
    chunked = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers and chunked.request.headers["transfer-encoding"] == "chunked"
    assert "without Content-Length" in _refused_as_too_large(chunked)
    assert client.post("/predict", json=PREDICT).status_code == 200  # a request of one flight fits


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(client):
    """The ASGI stream, chunk by chunk: the app stops reading at the limit, not at the body's end."""
    sent = []

    async def chunks():
        for _ in range(200):  # 12.5 MiB, were it all read
            sent.append(65_536)
            yield b" " * 65_536

    async def post():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tarmac") as http:
            return await http.post("/predict", content=chunks(), headers={"content-type": "application/json"})

    assert "without Content-Length" in _refused_as_too_large(anyio.run(post))
    assert sum(sent) <= 262_144 + 2 * 65_536  # the limit, and the chunk in flight


def test_the_body_limit_is_the_serve_setting(store, paths):
    online = OnlineSettings(serve=ServeSettings(max_body_bytes=100))
    with TestClient(create_app(online, paths, store=store, horizon_minutes=120)) as small:
        small.app.state.champion = StubChampion(RecordingModel())
        assert "larger than the 100 bytes" in _refused_as_too_large(small.post("/predict", json=PREDICT))
        assert small.get(f"/features/{FLIGHT_ID}").status_code == 200  # no body, nothing to refuse


TOKEN = "s3cret-token"


@pytest.fixture
def guarded(store, paths):
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120, api_token=TOKEN)) as client:
        client.app.state.champion = StubChampion(RecordingModel())
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, b"Bearer \xff\xfe"],
)
def test_with_a_token_set_features_and_predict_need_it(guarded, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    for response in (guarded.get(f"/features/{FLIGHT_ID}", headers=headers),
                     guarded.post("/predict", json=PREDICT, headers=headers)):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "token" in response.json()["detail"]


def test_the_right_token_is_let_in_and_health_stays_open(guarded):
    for scheme in ("Bearer", "bearer"):
        headers = {"Authorization": f"{scheme} {TOKEN}"}
        assert guarded.get(f"/features/{FLIGHT_ID}", headers=headers).json()["features"] == _approx(EXPECTED)
        assert guarded.post("/predict", json=PREDICT, headers=headers).json()["delay_probability"] == 0.75
    assert guarded.get("/health").status_code == 200


def test_the_token_defaults_to_the_environment(store, paths, monkeypatch):
    monkeypatch.setenv("TARMAC_API_TOKEN", TOKEN)
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)) as client:
        assert client.get(f"/features/{FLIGHT_ID}").status_code == 401
        assert client.get(f"/features/{FLIGHT_ID}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120, api_token="")) as client:
        assert client.get(f"/features/{FLIGHT_ID}").status_code == 200  # "" turns it off
    with pytest.raises(StartupError, match="must not hold whitespace"):
        create_app(OnlineSettings(), paths, store=store, horizon_minutes=120, api_token="two words")


@pytest.fixture
def no_store_overrides(monkeypatch):
    for var in ("TARMAC_ONLINE_STORE", "TARMAC_REDIS_URL", "TARMAC_EVENT_STREAM"):
        monkeypatch.delenv(var, raising=False)


def test_a_store_unreachable_at_start_up_is_a_start_up_error(paths, no_store_overrides):
    down = OnlineSettings(store="redis", redis_url="redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match=r"^the online store \(redis at redis://:\*\*\*@127\.0\.0\.1:1/0\) is "
                                           r"unreachable: .*Connection refused; start Redis there") as raised:
        with TestClient(create_app(down, paths, horizon_minutes=120)):
            pass
    assert "\n" not in str(raised.value) and "hunter2" not in str(raised.value)
    (paths.data_dir / "online").write_text("a file where the store's directory should be")
    with pytest.raises(StartupError, match=r"^the online store \(sqlite at .*online_store\.sqlite\) is unreachable"):
        with TestClient(create_app(OnlineSettings(), paths, horizon_minutes=120)):
            pass


def test_python_m_serving_says_why_it_cannot_start_in_one_line(paths, no_store_overrides, monkeypatch, capsys):
    monkeypatch.setenv("TARMAC_ONLINE_STORE", "redis")
    monkeypatch.setenv("TARMAC_REDIS_URL", "redis://127.0.0.1:1/0")
    served = []
    monkeypatch.setattr(serving_main.uvicorn, "run", lambda app, **options: served.append(options))
    assert serving_main.main(["--no-speed-layer"]) == 1
    err = capsys.readouterr().err
    assert not served and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("python -m serving: cannot start: the online store (redis at redis://127.0.0.1:1/0)")


class _Registry:
    """A model registry whose champion is `version`, each load waiting for `loading` to be set."""

    model_name = "tarmac-flight-delay"

    def __init__(self):
        self.version, self.loading, self.broken = "1", threading.Event(), False
        self.loading.set()

    def champion_version(self):
        if self.broken:
            raise RuntimeError("registry down")
        return self.version

    def load(self, version):
        assert self.loading.wait(10)
        return RecordingModel()

    def feature_sets(self):
        return {self.version: feature_versions()}


def test_the_champion_is_looked_up_again_in_the_background(paths, monkeypatch, caplog):
    registry = _Registry()
    monkeypatch.setattr(serving_api.ModelRegistry, "from_settings", lambda paths: registry)
    monkeypatch.setattr(serving_api, "_freeze_heap", lambda: None)
    (paths.mlflow).mkdir(parents=True)
    (paths.mlflow / "mlflow.db").touch()
    champion = serving_api.Champion(paths, refresh_seconds=0.05)
    champion.load()
    first = champion.get()
    assert first[:2] == ("tarmac-flight-delay", "1")

    def eventually(version):
        deadline = time.monotonic() + 10
        while champion.get()[1] != version:
            assert time.monotonic() < deadline, f"version {version} never came"
            time.sleep(0.01)

    registry.version = "2"
    registry.loading.clear()  # version 2 takes its time to load
    time.sleep(0.06)
    began = time.monotonic()
    assert champion.get() == first  # at once, the loaded champion, while the new one loads
    assert time.monotonic() - began < 0.05
    registry.loading.set()
    eventually("2")
    registry.broken = True  # a look-up that fails keeps the champion and says why
    time.sleep(0.06)
    second = champion.get()
    deadline = time.monotonic() + 10
    while "looking up the champion failed" not in caplog.text:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert champion.get() is second and second[1] == "2"
    registry.broken, registry.version = False, "3"
    time.sleep(0.06)
    champion.get()
    eventually("3")


class _BrokenConnection:
    """A SQLite connection whose disk has gone away."""

    def execute(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")


def test_a_store_that_stops_answering_gets_503_not_500(client, store, monkeypatch):
    client.app.state.champion = StubChampion(RecordingModel())
    with monkeypatch.context() as m:
        if store.backend == "redis":
            m.setattr(store, "client", redis.Redis.from_url("redis://127.0.0.1:1/0"))
        else:
            m.setattr(store, "_con", _BrokenConnection())
        for response in (client.get("/health"), client.get(f"/features/{FLIGHT_ID}"),
                         client.post("/predict", json=PREDICT)):
            assert response.status_code == 503, response.text
            assert f"the online store ({store.backend}) is unavailable" in response.json()["detail"]
        health = client.get("/health").json()
        assert health["status"] == "unavailable" and health["store"] == store.backend
        assert ("Connection refused" if store.backend == "redis" else "disk I/O error") in health["detail"]
    assert client.get("/health").json()["status"] == "ok"  # back once the store answers again


@pytest.fixture
def hung_redis():
    """The URL of a "Redis" that takes connections and never answers (a stopped server, a lost
    peer): the kernel completes the handshake from the listen backlog, no byte ever comes back."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def test_a_redis_that_stops_answering_fails_the_call_after_the_timeout_and_the_api_answers_503(
    hung_redis, redis_client, paths, monkeypatch
):
    online = OnlineSettings(store="redis", redis_url=hung_redis, redis_timeout_seconds=0.5)
    hung = open_online_store(online, paths)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        hung.coverage()
    assert 0.4 < time.monotonic() - started < 5
    # a server that is hung when the API starts: a clear refusal, not a process that waits forever
    with pytest.raises(StartupError, match="unreachable: Timeout reading from socket"):
        with TestClient(create_app(online, paths, store=hung, horizon_minutes=120)):
            pass
    # a server that hangs while the API serves: each call fails after the timeout, as a 503
    store = fill_store(RedisOnlineStore(redis_client, f"tarmac-test-{uuid.uuid4().hex[:10]}"))
    try:
        with TestClient(create_app(online, paths, store=store, horizon_minutes=120)) as client:
            client.app.state.champion = StubChampion(RecordingModel())
            with monkeypatch.context() as m:
                m.setattr(store, "client", hung.client)
                for call in (lambda: client.get("/health"), lambda: client.get(f"/features/{FLIGHT_ID}"),
                             lambda: client.post("/predict", json=PREDICT)):
                    started = time.monotonic()
                    response = call()
                    assert response.status_code == 503, response.text
                    assert "the online store (redis) is unavailable" in response.json()["detail"]
                    assert 0.4 < time.monotonic() - started < 5
            assert client.get("/health").json()["status"] == "ok"  # back once the store answers again
    finally:
        store.clear()
    # a timeout given in the URL's query wins over the setting
    assert RedisOnlineStore.from_url(f"{hung_redis}?socket_timeout=2", "t", 0.5).client.connection_pool.connection_kwargs[
        "socket_timeout"] == 2


def test_a_speed_layer_reading_a_hung_redis_stream_stops_with_the_error_instead_of_hanging(hung_redis, paths):
    online = OnlineSettings(stream="redis", redis_url=hung_redis, redis_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        run_configured_speed_layer(online=online, paths=paths)
    assert 0.4 < time.monotonic() - started < 5
    # a following reader blocks 5 s for new entries by design: the timeout comes on top of that
    assert stream_client(online, block_ms=5000).connection_pool.connection_kwargs["socket_timeout"] == 5.5


def test_a_snapshot_reads_what_separate_reads_read(store):
    """The coverage, the histories and the records in one statement (SQLite) or transaction
    (Redis): the same values as the reads one by one, and as the stores' generic snapshot."""
    slots = [(f, k) for f in SpeedLayer().features for k in ("LGA", "AA", "LGA|ORD", "LGA|BOS", "JFK")]
    records = [(PLANE, "N100AA"), (PLANE, "N999ZZ"), (FLIGHT, FLIGHT_ID)]
    for at in range(START, END + 10 * MIN, 37 * MIN):
        snapshot = store.snapshot(slots, at, records)
        assert snapshot.coverage == store.coverage() and snapshot.values == store.read(slots, at), from_us(at)
        assert snapshot.records == {r: store.get_record(*r) for r in records}
        assert snapshot == OnlineStore.snapshot(store, slots, at, records)
    assert store.snapshot([], P) == Snapshot(store.coverage(), {}, {})
    assert store.snapshot(slots, P).values  # the fixture's windows hold values at p


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


# Entries a producer could append that are not events, each beside the rule it breaks. Values are
# JSON, as RedisEventStream.publish writes them; GOOD is a valid departure they are built from.
GOOD = {"kind": '"departure"', "ts_us": str(P - 20 * MIN), "origin": '"LGA"', "dest": '"ORD"', "carrier": '"AA"',
        "dep_delay": "15.0"}
BAD_ENTRIES = [
    ({**GOOD, "dep_delay": "NaN"}, "dep_delay", "is not a JSON value"),
    ({**GOOD, "dep_delay": '"abc"'}, "dep_delay", "must be a finite number or null"),
    ({**GOOD, "dep_delay": "true"}, "dep_delay", "must be a finite number or null"),
    ({k: v for k, v in GOOD.items() if k != "carrier"}, "carrier", "is required in a departure event"),
    ({**GOOD, "gate": '"B12"'}, "gate", "is not a field of an event"),
    ({**GOOD, "origin": '"XXX"'}, "origin", "must be an origin the feature registry knows"),
    ({**GOOD, "dest": '"ord"'}, "dest", "must match"),
    ({**GOOD, "ts_us": "1.5e15"}, "ts_us", "must be an integer"),
    ({**GOOD, "ts_us": str(10**20)}, "ts_us", "must be an integer"),  # past 2099: would hold every later event late
    ({**GOOD, "kind": '"arrival"'}, "kind", "must be one of"),
    ({**GOOD, "origin": "{"}, "origin", "is not a JSON value"),
]


def test_a_bad_stream_entry_is_quarantined_with_its_reason_and_the_reader_goes_on(redis_client, tmp_path, caplog):
    client = redis_client
    prefix = f"tarmac-test-{uuid.uuid4().hex[:10]}"
    stream = RedisEventStream(client, f"{prefix}:events")
    redis_store = RedisOnlineStore(client, prefix)
    try:
        stream.publish(EVENTS[:3])
        bad_ids = [client.xadd(stream.key, fields).decode() for fields, _, _ in BAD_ENTRIES]
        stream.publish(EVENTS[3:])
        with caplog.at_level("ERROR", logger="tarmac.online.events"):
            report = run_speed_layer(stream.read(count=4), redis_store, start_us=START)
        # every good event applied, none of the bad: the same windows as a replay of the good alone
        assert report.events == len(EVENTS) and stream.rejected == len(BAD_ENTRIES)
        replayed = SqliteOnlineStore(tmp_path / "replay.sqlite")
        run_speed_layer([EVENTS], replayed, start_us=START)
        slots = [(f, k) for f in SpeedLayer().features for k in ("LGA", "AA", "LGA|ORD", "LGA|BOS")]
        for at in range(P - 100 * MIN, P + 6 * MIN, MIN):
            assert redis_store.read(slots, at) == replayed.read(slots, at), from_us(at)
        # each bad entry kept whole under its own id, with the rule it broke; each named in the log
        kept = client.xrange(stream.rejected_key)
        assert [entry_id.decode() for entry_id, _ in kept] == bad_ids
        for (entry_id, fields), (sent, field, rule) in zip(kept, BAD_ENTRIES, strict=True):
            fields = {k.decode(): v.decode() for k, v in fields.items()}
            assert {k: fields[k] for k in sent} == sent, fields
            assert fields["tarmac.error"].startswith(f"{field}: {rule}") and fields["tarmac.rule"].startswith(rule), fields
            line = next(r.getMessage() for r in caplog.records if entry_id.decode() in r.getMessage())
            assert stream.key in line and f"{field}: {rule}" in line and "got" in line, line
        # a restarted reader meets them again, applies none and quarantines none twice
        again = RedisEventStream(client, stream.key)
        run_speed_layer(again.read(), redis_store, start_us=START)
        assert again.rejected == len(BAD_ENTRIES) and client.xlen(stream.rejected_key) == len(BAD_ENTRIES)
        assert redis_store.read(slots, P) == replayed.read(slots, P)
    finally:
        redis_store.clear()
        assert not list(client.scan_iter(match=f"{prefix}*"))
