"""`make serve`: the serving API on 127.0.0.1 (one worker), and with the embedded event stream, the
speed layer replaying silver into the online store beside it.

    python -m serving [--host 127.0.0.1] [--port 8000] [--start 2013-01-01 --end 2013-12-31] [--no-speed-layer]

With `online.stream: push` this process hosts the speed layer: it replays silver's days (unless
--no-speed-layer), then applies the events producers send to POST /events (serving/push.py).
With `online.stream: redis` the speed layer is its own process (`python -m tools.cli
speed-layer`), and this one only serves. With TARMAC_API_TOKEN set, every endpoint but /health and
/metrics needs `Authorization: Bearer <token>`. An online store that does not answer, or a bad token, stops the
start with one line on stderr (exit status 1).

Logs go to stderr, one line per request (tarmac.serving.access) and per event worth telling, each
with the request id it belongs to. SIGTERM or Ctrl-C stops it gracefully: no new connection is
taken, the requests in flight are answered (for up to online.serve.shutdown_grace_seconds), then
the store is closed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

import uvicorn

from tarmac.paths import FIRST_DAY, LAST_DAY, TarmacPaths
from tarmac.settings.loader import load_settings

log = logging.getLogger("tarmac.serving")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging() -> None:
    """Tarmac's records on stderr with their request id; uvicorn keeps its own start/stop lines."""
    from serving.observability import RequestIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    tarmac = logging.getLogger("tarmac")
    tarmac.addHandler(handler)
    tarmac.setLevel(logging.INFO)
    tarmac.propagate = False


def _replay_in_background(start: str, end: str) -> threading.Thread:
    from tarmac.online.runner import run_configured_speed_layer  # dagster-dbt: only with the embedded stream

    def work() -> None:
        try:
            report = run_configured_speed_layer(start, end)
            log.warning("speed layer: %s events replayed (%.0f events/s), watermark %s",
                        f"{report.events:,}", report.events_per_second, report.watermark)
        except Exception:  # the API keeps serving batch features; say why the stream stopped
            log.exception("speed layer: the replay of silver failed")

    thread = threading.Thread(target=work, name="speed-layer", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    online = load_settings().online.with_environment()
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=online.serve.host, help="bind address (default from tarmac.yaml: %(default)s)")
    parser.add_argument("--port", type=int, default=online.serve.port)
    parser.add_argument("--start", default=FIRST_DAY, help="first local day the embedded stream replays")
    parser.add_argument("--end", default=LAST_DAY, help="last local day the embedded stream replays")
    parser.add_argument("--no-speed-layer", action="store_true",
                        help="serve only; something else feeds the store (with online.stream push: take events from "
                             "POST /events alone, without replaying silver's days first)")
    args = parser.parse_args(argv)
    from serving.api import StartupError, create_app, open_checked_store  # FastAPI: after the arguments are good

    paths = TarmacPaths.from_env()
    push = None
    if online.stream == "push":
        from serving.push import PushHost

        replay = None
        if not args.no_speed_layer:
            paths.warehouse.exists() or parser.error("no warehouse yet to replay: run make backfill, or --no-speed-layer")
            replay = (args.start, args.end)
        push = PushHost(online, paths, replay_days=replay)
    try:
        # here, before uvicorn: a failure in its lifespan would be logged with a traceback
        open_checked_store(online, paths).close()
        app = create_app(online, push=push)
    except StartupError as error:
        print(f"python -m serving: cannot start: {error}", file=sys.stderr)
        return 1
    if online.stream == "replay" and not args.no_speed_layer:
        paths.warehouse.exists() or parser.error("no warehouse yet: run make backfill first")
        _replay_in_background(args.start, args.end)
    configure_logging()
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="info", access_log=False,
                timeout_graceful_shutdown=online.serve.shutdown_grace_seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
