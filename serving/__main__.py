"""`make serve`: the serving API on 127.0.0.1 (one worker), and with the embedded event stream, the
speed layer replaying silver into the online store beside it.

    python -m serving [--host 127.0.0.1] [--port 8000] [--start 2013-01-01 --end 2013-12-31] [--no-speed-layer]

With `online.stream: redis` the speed layer is its own process (`python -m tools.cli
speed-layer`), and this one only serves. With TARMAC_API_TOKEN set, /features and /predict need
`Authorization: Bearer <token>`. An online store that does not answer, or a bad token, stops the
start with one line on stderr (exit status 1).
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
    parser.add_argument("--no-speed-layer", action="store_true", help="serve only; something else feeds the store")
    args = parser.parse_args(argv)
    from serving.api import StartupError, create_app, open_checked_store  # FastAPI: after the arguments are good

    try:
        # here, before uvicorn: a failure in its lifespan would be logged with a traceback
        open_checked_store(online, TarmacPaths.from_env()).close()
        app = create_app(online)
    except StartupError as error:
        print(f"python -m serving: cannot start: {error}", file=sys.stderr)
        return 1
    if online.stream == "replay" and not args.no_speed_layer:
        TarmacPaths.from_env().warehouse.exists() or parser.error("no warehouse yet: run make backfill first")
        _replay_in_background(args.start, args.end)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
