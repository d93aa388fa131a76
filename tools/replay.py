"""`make replay`: play 2013 back as the upstream system would deliver it, one day at a time.

Each local day's landing files are written when that day has ended on the replay clock, one day
every `seconds_per_day` seconds of wall time, so a person can watch the landing sensor pick each
day up, the layers build, the checks report and the freshness checks follow the replayed clock
in the Dagster UI. The clock is written first (tarmac/clock.py), so freshness is judged against
the replayed moment rather than against today.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from tarmac.clock import ReplayClock, start_replay_clock
from tarmac.days import days_between
from tarmac.paths import TarmacPaths
from tools.landing import fill_landing_zone, landed_days


def replay(
    paths: TarmacPaths,
    start: date,
    end: date,
    seconds_per_day: float,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> int:
    """Land start..end one day per `seconds_per_day`; returns the number of days landed."""
    days = days_between(start.isoformat(), end.isoformat())
    already = sorted(set(landed_days(paths, "flights")) & set(days))
    if already:
        log(
            f"{len(already)} of these days are already landed ({already[0]}..{already[-1]}) and are left as "
            "they are. Run `make clean` first for a replay from an empty landing zone."
        )
    fill_landing_zone(paths, [])  # the reference tables come first
    clock = ReplayClock.starting(start, seconds_per_day)
    log(f"replay clock at {start_replay_clock(paths, clock)}: one day every {seconds_per_day:g} s from {start}")
    for index, day in enumerate(days):
        wait = clock.wall_start + index * seconds_per_day - time.time()
        if wait > 0:
            sleep(wait)
        report = fill_landing_zone(paths, [day])
        log(f"{day} landed ({report.summary()}); the clock shows {clock.at(time.time()):%Y-%m-%d %H:%M}")
    return len(days)
