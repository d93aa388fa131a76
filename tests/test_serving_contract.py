"""The serving API's published contract, checked against the running server as a client generated
from /openapi.json would meet it: schemathesis generates requests from the schema (valid ones and
ones that break it), sends them to a live server and runs every check it has on each answer (no
5xx, only documented statuses, bodies and headers as documented, valid data accepted, invalid data
rejected, methods the schema does not list refused, the token required). Also the contract's own
promises that no generator can judge: one error shape everywhere, request ids, batches equal to
single calls, feature services and the metrics."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.push import PushHost
from tarmac.features.registry import feature_versions, model_features
from tarmac.online.events import from_us
from tarmac.online.store import SqliteOnlineStore
from tarmac.settings.online import OnlineSettings
from tests.serving_data import END, FLIGHT_ID, P, RecordingModel, StubChampion, fill_store

TOKEN = "contract-token"
# schemathesis: every check, this many generated cases per operation and phase, this seed
MAX_EXAMPLES, SEED = 12, 20261207
PREDICT = {"carrier": "AA", "flight": 100, "origin": "LGA", "dest": "ORD", "sched_dep_ts": "2013-06-09T12:30:00-04:00",
           "tailnum": "N100AA", "distance": 733}  # fmt: skip


@pytest.fixture
def client(online_store, paths):
    """Both stores (SQLite, Redis), the champion a stand-in."""
    store = fill_store(online_store)
    with TestClient(create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)) as client:
        client.app.state.champion = StubChampion(RecordingModel())
        yield client


class LiveServer:
    """The app under uvicorn on a free port of 127.0.0.1, in a thread of the test process."""

    def __init__(self, app):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])), daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()


def wait_until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_schemathesis_finds_no_failure_against_the_live_server(tmp_path, paths):
    import tarmac.ml.scoring  # noqa: F401 - the champion's scorer, loaded before the first request as serving does

    store = fill_store(SqliteOnlineStore(tmp_path / "online.sqlite"))
    push = OnlineSettings(stream="push")  # POST /events applies what it is sent
    app = create_app(push, paths, store=store, horizon_minutes=120, api_token=TOKEN, push=PushHost(push, paths))
    with LiveServer(app) as server:
        app.state.champion = StubChampion(RecordingModel())
        completed = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
             "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--request-timeout", "30",
             "--header", f"Authorization: Bearer {TOKEN}", "--no-color", "--suppress-health-check", "too_slow",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    store.close()
    summary = completed.stdout[completed.stdout.rfind("SUMMARY"):]
    print(summary)  # the case count and the seed, in the test's output
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    generated = re.search(r"(\d+) generated", summary)
    assert generated and int(generated.group(1)) > 200, summary  # it ran, and over every operation
    assert f"Seed: {SEED}" in summary
    assert "Tested: 6" in summary, summary  # GET and POST /features, POST /predict and /events, services, health


def test_every_error_is_one_shape_with_the_request_id(client):
    answers = [
        client.get("/features/AA100"),  # 422, path
        client.get(f"/features/{FLIGHT_ID}", params={"as_of": "soon"}),  # 422, query
        client.get("/features/AA-101-LGA-20130609"),  # 404
        client.get(f"/features/{FLIGHT_ID}", params={"as_of": from_us(END + 1).isoformat()}),  # 409
        client.post("/predict", json={**PREDICT, "origin": "BOS"}),  # 422, body
        client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}),  # 422
        client.post("/predict", content=b"\xff", headers={"content-type": "application/json"}),  # 400: not text
        client.get("/no-such-page"),  # 404, no route
        client.delete(f"/features/{FLIGHT_ID}"),  # 405
    ]
    for response in answers:
        body = response.json()
        assert set(body) == {"status", "title", "detail", "request_id", "errors"}, body
        assert body["status"] == response.status_code and body["detail"] and body["title"]
        assert body["request_id"] == response.headers["x-request-id"]
    assert [r.status_code for r in answers] == [422, 422, 404, 409, 422, 422, 400, 404, 405]
    assert answers[5].json()["errors"][0]["type"] == "json_invalid" and "not JSON" in answers[6].json()["detail"]
    assert answers[0].json()["errors"][0]["location"] == "path.flight_id"
    assert answers[4].json()["errors"] == [{"location": "body.origin", "type": "enum",
                                            "message": "Input should be 'EWR', 'JFK' or 'LGA' (got 'BOS')"}]
    assert answers[-1].headers["allow"] == "GET"
    # the caller's id is kept and answered; one that is not plain is replaced
    assert client.get("/health", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
    replaced = client.get("/health", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_the_schema_states_what_the_endpoints_enforce(client):
    schema = client.get("/openapi.json").json()
    flight_id = next(p for p in schema["paths"]["/features/{flight_id}"]["get"]["parameters"] if p["name"] == "flight_id")
    assert flight_id["schema"]["pattern"] == "^[A-Z0-9]{2}-[0-9]{1,4}-[A-Z]{3}-[0-9]{8}$"
    assert schema["components"]["schemas"]["Origin"]["enum"] == ["EWR", "JFK", "LGA"]
    predict = schema["components"]["schemas"]["PredictRequest"]
    assert predict["properties"]["sched_dep_ts"]["format"] == "date-time" and predict["additionalProperties"] is False
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/health":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}, (
                        method, path, status)
    # a flight number written 100.0 is the integer JSON Schema says it is; "100" and true are not
    assert client.post("/predict", json={**PREDICT, "flight": 100.0}).status_code == 200
    assert client.post("/predict", json={**PREDICT, "flight": "100"}).status_code == 422


def test_a_batch_answers_each_flight_as_a_single_call_would(client):
    flights = [{"flight_id": FLIGHT_ID}, {"flight_id": FLIGHT_ID, "as_of": from_us(P + 5 * 60_000_000).isoformat()},
               {"flight_id": "AA-101-LGA-20130609"}, {"flight_id": "AA-100-LGA-20130531"},
               {"flight_id": FLIGHT_ID, "as_of": from_us(END + 1).isoformat()}]
    batch = client.post("/features", json={"flights": flights})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert len(results) == len(flights)
    for query, item in zip(flights, results, strict=True):
        single = client.get(f"/features/{query['flight_id']}", params={"as_of": query.get("as_of")} if "as_of" in query else {})
        assert item["flight_id"] == query["flight_id"] and item["status"] == single.status_code
        if single.status_code == 200:
            assert item["vector"] == single.json() and item["error"] is None
        else:
            assert item["vector"] is None and item["error"]["detail"] == single.json()["detail"]
    assert [item["status"] for item in results] == [200, 200, 404, 200, 409]
    # a malformed item fails the request, with its place named
    bad = client.post("/features", json={"flights": [{"flight_id": FLIGHT_ID}, {"flight_id": "nope"}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["location"] == "body.flights.1.flight_id"
    assert client.post("/features", json={"flights": []}).status_code == 422


def test_predict_takes_a_list_and_answers_each_flight(client):
    one = client.post("/predict", json=PREDICT).json()
    later = {**PREDICT, "sched_dep_ts": "2013-06-20T12:30:00-04:00"}  # after the watermark: 409 for that one alone
    many = client.post("/predict", json=[PREDICT, later, PREDICT])
    assert many.status_code == 200, many.text
    items = many.json()
    assert [item["status"] for item in items] == [200, 409, 200]
    assert items[0]["prediction"] == one and items[2]["prediction"] == one
    assert items[1]["flight_id"] == "AA-100-LGA-20130620" and "watermark" in items[1]["error"]["detail"]
    assert client.post("/predict", json=[]).status_code == 422
    # one malformed flight: the whole request is refused, and only the list's errors are named
    bad = client.post("/predict", json=[PREDICT, {**PREDICT, "origin": "BOS"}]).json()
    assert [e["location"] for e in bad["errors"]] == ["body.1.origin"]


def test_feature_services_serve_exactly_what_a_model_version_needs(client):
    services = {s["name"]: s for s in client.get("/feature-services").json()}
    assert set(services) == {"all", "tarmac-flight-delay@2", "tarmac-flight-delay@3"}
    assert services["tarmac-flight-delay@3"]["champion"] and services["tarmac-flight-delay@3"]["servable"]
    assert services["tarmac-flight-delay@2"]["stale"] == ["origin_dep_delay_avg_1h"]
    default = client.get(f"/features/{FLIGHT_ID}").json()
    assert default["service"] == "tarmac-flight-delay@3" and list(default["features"]) == model_features()
    assert default["feature_versions"] == feature_versions()
    named = client.get(f"/features/{FLIGHT_ID}", params={"service": "all"}).json()
    assert named["features"] == default["features"] and named["service"] == "all"
    stale = client.get(f"/features/{FLIGHT_ID}", params={"service": "tarmac-flight-delay@2"})
    assert stale.status_code == 409
    assert "origin_dep_delay_avg_1h v" in stale.json()["detail"] and "retrain" in stale.json()["detail"]
    unknown = client.get(f"/features/{FLIGHT_ID}", params={"service": "tarmac-flight-delay@9"})
    assert unknown.status_code == 404 and "GET /feature-services" in unknown.json()["detail"]


def test_a_service_is_the_subset_its_model_was_trained_on(client):
    class Narrow(StubChampion):
        def feature_sets(self):
            current = feature_versions()
            return "tarmac-flight-delay", {"3": {name: current[name] for name in ("carrier", "origin", "temp_f")}}

    client.app.state.champion = Narrow(RecordingModel())
    body = client.get(f"/features/{FLIGHT_ID}").json()
    assert body["features"] == {"carrier": "AA", "origin": "LGA", "temp_f": 70.0}
    assert body["feature_versions"] == {name: feature_versions()[name] for name in ("carrier", "origin", "temp_f")}


def test_metrics_count_requests_latency_store_errors_and_the_watermark(client, monkeypatch):
    client.get(f"/features/{FLIGHT_ID}")
    client.get("/features/AA-101-LGA-20130609")
    client.post("/predict", json=PREDICT)

    store = client.app.state.store
    error = sqlite3.OperationalError("disk I/O error") if store.backend == "sqlite" else redis.ConnectionError("gone")

    def down(*args, **kwargs):
        raise error

    monkeypatch.setattr(store, "get_record", down)
    assert client.get(f"/features/{FLIGHT_ID}").status_code == 503
    monkeypatch.undo()
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")

    def value(metric: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        found = re.search(rf"^{re.escape(metric)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
        assert found, (metric, labels, text[:3000])
        return float(found.group(1))

    route = "/features/{flight_id}"
    assert value("tarmac_http_requests_total", method="GET", route=route, status="200") == 1
    assert value("tarmac_http_requests_total", method="GET", route=route, status="404") == 1
    assert value("tarmac_http_requests_total", method="GET", route=route, status="503") == 1
    assert value("tarmac_http_requests_total", method="POST", route="/predict", status="200") == 1
    assert value("tarmac_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert value("tarmac_online_store_errors_total", backend=store.backend, error=type(error).__name__) == 1
    assert float(re.search(r"^tarmac_speed_layer_watermark_timestamp_seconds (\S+)$", text, re.M).group(1)) == END / 1e6
    lag = float(re.search(r"^tarmac_speed_layer_watermark_lag_seconds (\S+)$", text, re.M).group(1))
    assert abs(lag - (time.time() - END / 1e6)) < 60
    assert value("tarmac_model_info", name="tarmac-flight-delay", version="3") == 1


def test_the_access_log_names_each_request_by_its_id(client, caplog):
    caplog.set_level("INFO", logger="tarmac.serving.access")
    client.get(f"/features/{FLIGHT_ID}", headers={"X-Request-ID": "req-7"})
    line = next(r for r in caplog.records if r.name == "tarmac.serving.access")
    assert line.getMessage().startswith(f"GET /features/{FLIGHT_ID} 200 ") and line.request_id == "req-7"


def test_a_live_server_finishes_the_request_in_flight_when_told_to_stop(tmp_path, paths, caplog):
    """Graceful shutdown: the server stops taking requests, answers the one it is reading, then
    closes the store (SIGTERM does the same to `python -m serving`: uvicorn sets should_exit)."""
    store = fill_store(SqliteOnlineStore(tmp_path / "online.sqlite"))
    app = create_app(OnlineSettings(), paths, store=store, horizon_minutes=120)
    release, answered = threading.Event(), {}
    body = ('{"flights": [{"flight_id": "' + FLIGHT_ID + '"}]}').encode()

    def slow_body():
        yield body[:10]
        release.wait(30)  # the server is told to stop while it waits for the rest
        yield body[10:]

    with LiveServer(app) as server:
        def call():
            answered["response"] = httpx.post(f"{server.url}/features", content=slow_body(), timeout=60,
                                              headers={"content-type": "application/json"})

        caller = threading.Thread(target=call)
        caller.start()
        state = server.server.server_state
        wait_until(lambda: state.tasks)  # the request is in flight: its headers read, its body awaited
        server.server.should_exit = True

        def refused() -> bool:
            try:
                httpx.get(f"{server.url}/health", timeout=5)
            except httpx.ConnectError:
                return True
            return False

        wait_until(refused)  # no new connection is taken, while the one in flight waits for its body
        assert caller.is_alive() and "response" not in answered
        release.set()
        caller.join(30)
    assert answered["response"].status_code == 200 and answered["response"].json()["results"][0]["status"] == 200
    assert "serving API: stopping" in caplog.text  # the lifespan ended: the store is let go after the answer
    store.close()
