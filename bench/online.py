"""Benchmark: the real-time path (speed layer, online store, serving API). Prints figures only.

    uv run python -m bench.online [--get-rate 500] [--get-seconds 10] [--post-rate 100] [--post-seconds 10]
                                  [--json results.json]

(1) Speed-layer throughput over silver's events of 2013-06-01..30 (loaded once), best of 3: the
layer alone, then writing a scratch SQLite store, then a scratch Redis prefix. (2) Serving latency
of GET /features/{id}, POST /predict and POST /features with 100 ids on loopback against one
uvicorn worker (a subprocess over a scratch store holding that replay and the flights of
06-08..06-30), at a fixed request rate. (3) Push: the same events sent to POST /events of a server
hosting the speed layer (online.stream push), in requests of 1,000, into an empty store.

The load is open-loop: request i is due at start + i / rate whatever happened to earlier ones, and
its latency runs from that *scheduled* time to its response. Timing from the actual send would hide
coordinated omission: when the server stalls, a closed-loop client sends less and its queued
requests' waits vanish from the percentiles. Here a stall shows up in every request it delays.
The load generator shares the machine (and its CPUs) with the server.
"""

import argparse
import http.client
import json
import os
import platform
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from tarmac.online.batch import flight_records, plane_records
from tarmac.online.events import replay_silver, to_us
from tarmac.online.retrieval import FLIGHT, PLANE
from tarmac.online.runner import local_day_bounds, run_speed_layer
from tarmac.online.speed_layer import SpeedLayer
from tarmac.online.store import RedisOnlineStore, SqliteOnlineStore
from tarmac.paths import TarmacPaths
from tarmac.settings.loader import load_settings
from tarmac.warehouse import read_only

ROOT = Path(__file__).resolve().parent.parent
START_DAY, END_DAY, FIRST_SERVED, FLIGHTS_END = "2013-06-01", "2013-06-30", "2013-06-08", "2013-07-01"
POST_FIELDS = ("carrier", "flight", "origin", "dest", "sched_dep_ts", "tailnum", "distance")
BATCH = 100  # flight ids per POST /features
PUSH_BATCH = 1000  # events per POST /events


def serve(backend: str, target: str, port: int, redis_url: str, push: bool = False) -> None:
    """The server subprocess: the API over the given store, as `python -m serving` runs it (with
    `push`, as it runs with online.stream push: hosting the speed layer POST /events feeds)."""
    import uvicorn

    from serving.api import create_app
    from serving.push import PushHost

    store = SqliteOnlineStore(target) if backend == "sqlite" else RedisOnlineStore.from_url(redis_url, target)
    online = load_settings().online.model_copy(update={"stream": "push"}) if push else None
    host = PushHost(online, TarmacPaths.from_env()) if push else None
    uvicorn.run(create_app(online, store=store, push=host), host="127.0.0.1", port=port, workers=1,
                log_level="warning", access_log=False)


def redis_unreachable(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        return None
    except Exception as error:
        return f"Redis at {url} unreachable ({type(error).__name__}: {error})"


def throughput(events, start_us: int, end_us: int, redis_url: str, tmp: Path) -> list[dict]:
    def alone() -> float:
        began = time.perf_counter()
        layer = SpeedLayer()
        layer.apply_all(events)
        layer.drain()
        return time.perf_counter() - began

    def into(open_store) -> float:
        store = open_store()
        try:
            return run_speed_layer([events], store, start_us=start_us, end_us=end_us, flush_every=5000).seconds
        finally:
            store.clear()
            store.close()

    best = lambda fn: min(fn() for _ in range(3))  # noqa: E731
    reason = redis_unreachable(redis_url)
    rows = [("(a) speed layer alone", best(alone), ""),
            ("(b) -> SQLite store", best(lambda: into(
                lambda: SqliteOnlineStore(tmp / f"throughput-{uuid.uuid4().hex[:8]}.sqlite"))), ""),
            ("(c) -> Redis store", None if reason else best(lambda: into(
                lambda: RedisOnlineStore.from_url(redis_url, f"tarmac-bench-{uuid.uuid4().hex[:8]}"))), reason)]
    print(f"\n1. speed-layer throughput, {len(events):,} events of {START_DAY}..{END_DAY}, best of 3")
    print(f"   {'':24s} {'events':>8s} {'seconds':>8s} {'events/s':>10s} {'time vs (a)':>12s}")
    for label, seconds, why in rows:
        if seconds is None:
            print(f"   {label:24s} skipped: {why}")
        else:
            print(f"   {label:24s} {len(events):8,d} {seconds:8.3f} {len(events) / seconds:10,.0f} "
                  f"{seconds / rows[0][1]:11.2f}x")
    return [{"path": label, "events": len(events), "seconds": s, "skipped": why or None,
             "events_per_second": None if s is None else len(events) / s,
             "time_vs_alone": None if s is None else s / rows[0][1]}
            for label, s, why in rows]


def fill_store(store, events, start_us: int, end_us: int, planes: dict, flights: dict) -> None:
    run_speed_layer([events], store, start_us=start_us, end_us=end_us, flush_every=5000)
    store.put_records(PLANE, planes, group="all")
    for day in sorted({r["flight_date"] for r in flights.values()}):
        store.put_records(FLIGHT, {k: r for k, r in flights.items() if r["flight_date"] == day}, group=day)


def send(con: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    """One request on a keep-alive connection; reconnects once if the server had closed it."""
    for attempt in (0, 1):
        try:
            con.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            response = con.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError) as error:
            con.close()
            if attempt:
                return type(error).__name__, str(error).encode()


@contextmanager
def server(backend: str, target: str, redis_url: str, tmp: Path, push: bool = False):
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp / f"server-{backend}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.online", "--serve", backend, target, str(port),
                                 "--redis-url", redis_url, *(["--push"] if push else [])],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, health = time.monotonic() + 180, None
        while health is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {backend} server did not come up:\n{log_path.read_text()[-3000:]}")
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, body = send(con, "GET", "/health")
            con.close()
            health = json.loads(body) if status == 200 else time.sleep(0.2)
        yield port, health
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_loop(port: int, requests: list, rate: float, seconds: float, connections: int) -> dict:
    """rate * seconds requests, request i due at start + i / rate, sent over `connections`
    keep-alive connections; latency from the due time to the response's last byte."""
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    results: list[tuple[float, float, object, bytes]] = []  # (due, done, status, body)

    def worker() -> None:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (job := jobs.get()) is not None:
            due, (method, path, body) = job
            status, data = send(con, method, path, body)
            results.append((due, time.perf_counter(), status, data))
        con.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.1
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        jobs.put((due, requests[i % len(requests)]))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    ms = np.array([(done - due) * 1000 for due, done, _, _ in results])
    return {"n": len(results), "rate": len(results) / (max(r[1] for r in results) - start),
            **{f"p{p}": float(np.percentile(ms, p)) for p in (50, 90, 99)}, "max": float(ms.max()),
            "errors": [(status, data[:200]) for _, _, status, data in results if status != 200]}


def latency(backend: str, target: str, redis_url: str, tmp: Path, served: list, args) -> list[dict]:
    with server(backend, target, redis_url, tmp) as (port, health):
        print(f"\n2. serving latency, {backend} store, one uvicorn worker on 127.0.0.1:{port} "
              f"(watermark {health['watermark']}, {health['flights']:,} flights, model {health['model']})")
        gets = [("GET", f"/features/{r['flight_id']}", None) for r in served]
        posts = [("POST", "/predict", json.dumps({k: r[k] for k in POST_FIELDS}).encode()) for r in served]
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sources = [json.loads(send(con, *request)[1]).get("source") for request in gets[:20]]
        warm = [send(con, *request)[0] for request in posts[:20]]
        con.close()
        print(f"   warm-up (not timed): GET sources { {s: sources.count(s) for s in set(sources)} }, "
              f"POST statuses { {s: warm.count(s) for s in set(warm)} }")
        ids = [r["flight_id"] for r in served]
        batches = [("POST", "/features", json.dumps({"flights": [{"flight_id": f} for f in ids[i:i + BATCH]]}).encode())
                   for i in range(0, len(ids) - BATCH + 1, BATCH)]
        rows = []
        for name, requests, rate, seconds in (("GET /features", gets, args.get_rate, args.get_seconds),
                                              ("POST /predict", posts, args.post_rate, args.post_seconds),
                                              (f"POST /features x{BATCH}", batches, args.batch_rate, args.batch_seconds)):
            if name == "POST /predict" and health["model"] is None:
                print(f"   {name:14s} skipped: no champion model in the registry (train one: make backfill)")
                rows.append({"store": backend, "endpoint": name, "rate": rate, "skipped": "no champion model"})
                continue
            r = open_loop(port, requests, rate, seconds, args.connections)
            per = f", {r['rate'] * BATCH:,.0f} vectors/s" if name.endswith(f"x{BATCH}") else ""
            print(f"   {name:14s} target {rate:g}/s x {seconds:g} s: achieved {r['rate']:.1f}/s{per}, n={r['n']}, "
                  f"p50 {r['p50']:.1f} ms, p90 {r['p90']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms, "
                  f"non-200: {len(r['errors'])}")
            for status, data in r["errors"][:5]:
                print(f"      {status}: {data!r}")
            rows.append({"store": backend, "endpoint": name, "rate": rate, "seconds": seconds,
                         "achieved": r["rate"], "n": r["n"], "p50_ms": r["p50"], "p90_ms": r["p90"],
                         "p99_ms": r["p99"], "max_ms": r["max"], "non_200": len(r["errors"])})
        return rows


def push_throughput(backend: str, target: str, redis_url: str, tmp: Path, events: list, args) -> dict:
    """POST /events to a server hosting the speed layer, over an empty store: the events in
    requests of PUSH_BATCH, one request after another (a producer waits for each answer), the last
    with the replay's end as watermark. Events per second from the first request to the last answer."""
    from serving.push import as_pushed

    bodies = []
    for i in range(0, len(events), PUSH_BATCH):
        chunk = events[i:i + PUSH_BATCH]
        body = {"events": [as_pushed(e, f"{i + j}") for j, e in enumerate(chunk)]}
        if i + PUSH_BATCH >= len(events):
            body["watermark"] = pd.Timestamp(chunk[-1].ts_us * 1000, tz="UTC").isoformat()
        bodies.append(json.dumps(body).encode())
    with server(backend, target, redis_url, tmp, push=True) as (port, _):
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        times, statuses, applied = [], [], 0
        began = time.perf_counter()
        for body in bodies:
            sent = time.perf_counter()
            status, data = send(con, "POST", "/events", body)
            times.append((time.perf_counter() - sent) * 1000)
            statuses.append(status)
            applied += json.loads(data).get("applied", 0) if status == 200 else 0
        seconds = time.perf_counter() - began
        con.close()
    ms = np.array(times)
    row = {"store": backend, "endpoint": f"POST /events x{PUSH_BATCH}", "events": len(events), "requests": len(bodies),
           "applied": applied, "seconds": seconds, "events_per_second": len(events) / seconds,
           "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
           "non_200": sum(s != 200 for s in statuses)}
    print(f"\n3. push, {backend} store: {len(events):,} events in {len(bodies)} requests of {PUSH_BATCH}: "
          f"{seconds:.1f} s, {row['events_per_second']:,.0f} events/s, request p50 {row['p50_ms']:.1f} ms, "
          f"p99 {row['p99_ms']:.1f} ms, {applied:,} applied, non-200: {row['non_200']}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.online", description=__doc__.splitlines()[0])
    # the rates the serving goals are set at (p99 within 2 ms for GET, 10 ms for POST); one worker
    # keeps up with either several times over, so these measure latency, not a queue
    parser.add_argument("--get-rate", type=float, default=500.0, help="GET /features requests per second")
    parser.add_argument("--get-seconds", type=float, default=10.0)
    parser.add_argument("--post-rate", type=float, default=100.0, help="POST /predict requests per second")
    parser.add_argument("--post-seconds", type=float, default=10.0)
    parser.add_argument("--batch-rate", type=float, default=20.0, help=f"POST /features calls of {BATCH} ids per second")
    parser.add_argument("--batch-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--redis-url", default=load_settings().online.with_environment().redis_url)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve", nargs=3, metavar=("BACKEND", "TARGET", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--push", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], args.serve[1], int(args.serve[2]), args.redis_url, push=args.push)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {os.cpu_count()} CPUs ({cpus} usable), Python {platform.python_version()} "
          f"({platform.python_implementation()}), {platform.system()} {platform.machine()}")
    warehouse = TarmacPaths.from_env().warehouse
    start, end = local_day_bounds(START_DAY, END_DAY)
    start_us, end_us = to_us(start), to_us(end)
    events = replay_silver(warehouse, start, end)
    with tempfile.TemporaryDirectory(prefix="tarmac-bench-") as tmp_name:
        tmp = Path(tmp_name)
        speed = throughput(events, start_us, end_us, args.redis_url, tmp)
        serving: list[dict] = []

        with read_only(warehouse) as con:
            planes, flights = plane_records(con), flight_records(con, FIRST_SERVED, FLIGHTS_END)
        exact_from = start_us + SpeedLayer().max_window_us  # the store's values are exact from here on
        served = [r for r in flights.values() if exact_from <= to_us(pd.Timestamp(r["prediction_ts"])) <= end_us]
        random.Random(13).shuffle(served)
        print(f"\nrequests drawn from {len(served):,} of {len(flights):,} flights of {FIRST_SERVED}..{END_DAY} "
              f"(prediction_ts in the replay, after its first {(exact_from - start_us) / 86_400e6:g} days)")

        path = tmp / "serving.sqlite"
        store = SqliteOnlineStore(path)
        fill_store(store, events, start_us, end_us, planes, flights)
        store.close()
        serving += latency("sqlite", str(path), args.redis_url, tmp, served, args)

        if reason := redis_unreachable(args.redis_url):
            print(f"\n2. serving latency, redis store: skipped: {reason}")
            serving.append({"store": "redis", "endpoint": "all", "skipped": reason})
        else:
            store = RedisOnlineStore.from_url(args.redis_url, f"tarmac-bench-{uuid.uuid4().hex[:8]}")
            try:
                fill_store(store, events, start_us, end_us, planes, flights)
                serving += latency("redis", store.prefix, args.redis_url, tmp, served, args)
            finally:
                store.clear()
                store.close()

        path = tmp / "push.sqlite"
        SqliteOnlineStore(path).close()
        serving.append(push_throughput("sqlite", str(path), args.redis_url, tmp, events, args))
        if not redis_unreachable(args.redis_url):
            store = RedisOnlineStore.from_url(args.redis_url, f"tarmac-bench-{uuid.uuid4().hex[:8]}")
            try:
                serving.append(push_throughput("redis", store.prefix, args.redis_url, tmp, events, args))
            finally:
                store.clear()
                store.close()

    print("\nsummary")
    for row in speed:
        print(f"   {row['path']:30s} " + (f"skipped: {row['skipped']}" if row["seconds"] is None else
              f"{row['events_per_second']:,.0f} events/s, {row['time_vs_alone']:.2f}x the time of (a)"))
    for row in serving:
        label = f"{row['store']} {row['endpoint']}" + (f" at {row['rate']:g}/s" if "rate" in row else "")
        if "events_per_second" in row:
            print(f"   {label:30s} {row['events_per_second']:,.0f} events/s, request p50 {row['p50_ms']:.1f} ms, "
                  f"p99 {row['p99_ms']:.1f} ms, {row['non_200']} non-200")
            continue
        print(f"   {label:30s} " + (f"skipped: {row['skipped']}" if "skipped" in row else
              f"{row['achieved']:6.1f}/s achieved, p50 {row['p50_ms']:7.1f} ms, p99 {row['p99_ms']:7.1f} ms, "
              f"max {row['max_ms']:7.1f} ms, {row['non_200']} non-200"))
    if args.json:
        args.json.write_text(json.dumps({"events_days": [START_DAY, END_DAY], "throughput": speed,
                                         "latency": serving}, indent=1))


if __name__ == "__main__":
    main()
