"""The pipeline clock: what "now" means to freshness checks.

The data is 2013's. Against the wall clock every 2013 day is long overdue, so freshness could only
say "the whole year is there or it is not". While `make replay` plays 2013 back one landing day
every few seconds, it writes a replay clock to the data directory, and the clock then shows the
replayed moment instead: the day that has just been delivered ends now, the next one ends
`seconds_per_day` seconds later. A freshness deadline ("yesterday's partition by 04:00") then
means what it would mean in production, compressed in time. Without a replay clock file, the
clock is the wall clock.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tarmac.paths import LOCAL_TIMEZONE, TarmacPaths

CLOCK_FILE = "replay/clock.json"


@dataclass(frozen=True)
class ReplayClock:
    wall_start: float  # wall time (epoch seconds) at which the clock showed `data_start`
    data_start: str  # ISO local datetime: the end of the first replayed day
    seconds_per_day: float

    @classmethod
    def starting(cls, first_day: date, seconds_per_day: float, wall_start: float | None = None) -> ReplayClock:
        end_of_first_day = datetime.combine(first_day + timedelta(days=1), datetime.min.time())
        return cls(time.time() if wall_start is None else wall_start, end_of_first_day.isoformat(), seconds_per_day)

    def _start(self) -> datetime:
        return datetime.fromisoformat(self.data_start).replace(tzinfo=ZoneInfo(LOCAL_TIMEZONE))

    def at(self, wall: float) -> datetime:
        """The replayed moment shown at wall time `wall`."""
        return self._start() + timedelta(days=(wall - self.wall_start) / self.seconds_per_day)

    def wall_time_of(self, moment: datetime) -> float:
        """The wall time at which the clock will show `moment`."""
        return self.wall_start + (moment - self._start()) / timedelta(days=1) * self.seconds_per_day


@dataclass(frozen=True)
class Clock:
    replay: ReplayClock | None

    @property
    def mode(self) -> str:
        return "replay" if self.replay else "wall"

    def now(self) -> datetime:
        wall = time.time()
        return self.replay.at(wall) if self.replay else datetime.fromtimestamp(wall, ZoneInfo("UTC"))

    def wall_time_of(self, moment: datetime) -> float:
        return self.replay.wall_time_of(moment) if self.replay else moment.timestamp()


def clock_file(paths: TarmacPaths) -> Path:
    return paths.data_dir / CLOCK_FILE


def pipeline_clock(paths: TarmacPaths | None = None) -> Clock:
    path = clock_file(paths or TarmacPaths.from_env())
    if not path.exists():
        return Clock(None)
    try:
        return Clock(ReplayClock(**json.loads(path.read_text(encoding="utf-8"))))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a replay clock ({error}); delete it to use the wall clock") from error


def start_replay_clock(paths: TarmacPaths, clock: ReplayClock) -> Path:
    path = clock_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(clock), indent=2) + "\n", encoding="utf-8")
    return path


def stop_replay_clock(paths: TarmacPaths) -> None:
    clock_file(paths).unlink(missing_ok=True)
