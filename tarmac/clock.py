"""The pipeline clock: what "now" means to freshness checks.

The data is 2013's. Against the wall clock every 2013 day is long overdue, so freshness could only
say "the whole year is there or it is not". The clock is upstream's instead:

- While `make replay` plays 2013 back one landing day every few seconds, it writes a replay clock
  to the data directory, and the clock shows the replayed moment: the day that has just been
  delivered ends now, the next one ends `seconds_per_day` seconds later. A freshness deadline
  ("yesterday's partition by 04:00") then means what it would mean in production, compressed in
  time, and a day that never arrives is overdue.
- Otherwise the clock follows the deliveries in the landing zone: the latest delivered day has
  just ended when its files land, and time runs on from there at wall speed. Only delivered days
  can be due: a backfill of two weeks is not overdue for the rest of the year, and a delivered
  day that nobody processed is, once its deadline passes.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tarmac.paths import LANDING_DATASETS, LOCAL_TIMEZONE, TarmacPaths

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
class Deliveries:
    """What upstream has delivered to the landing zone: its days, and the wall time at which the
    latest of them landed, which is when that day ended on the pipeline's clock."""

    days: frozenset[str]
    latest_landed_at: float = 0.0

    def _end_of_latest(self) -> datetime:
        latest = date.fromisoformat(max(self.days))
        return datetime.combine(latest + timedelta(days=1), datetime.min.time(), ZoneInfo(LOCAL_TIMEZONE))

    def at(self, wall: float) -> datetime:
        return self._end_of_latest() + timedelta(seconds=wall - self.latest_landed_at)

    def wall_time_of(self, moment: datetime) -> float:
        return self.latest_landed_at + (moment - self._end_of_latest()).total_seconds()


@dataclass(frozen=True)
class Clock:
    replay: ReplayClock | None
    deliveries: Deliveries | None = None  # without a replay: the landing zone's clock

    @property
    def mode(self) -> str:
        if self.replay:
            return "replay"
        return "deliveries" if self.deliveries is not None else "wall"

    @property
    def _source(self) -> ReplayClock | Deliveries | None:
        """What turns wall time into the pipeline's time; None: the wall clock itself."""
        return self.replay or (self.deliveries if self.deliveries is not None and self.deliveries.days else None)

    def now(self) -> datetime:
        wall = time.time()
        return self._source.at(wall) if self._source else datetime.fromtimestamp(wall, ZoneInfo("UTC"))

    def wall_time_of(self, moment: datetime) -> float:
        return self._source.wall_time_of(moment) if self._source else moment.timestamp()


def clock_file(paths: TarmacPaths) -> Path:
    return paths.data_dir / CLOCK_FILE


def deliveries(paths: TarmacPaths) -> Deliveries:
    """The days of the landing zone's daily files, and when the latest day's files landed."""
    landed: dict[str, float] = {}
    for dataset in LANDING_DATASETS:
        for file in (paths.landing / dataset).glob("*.csv"):
            try:
                date.fromisoformat(file.stem)
                mtime = file.stat().st_mtime
            except (ValueError, OSError):  # not a day's file, or gone since it was listed
                continue
            landed[file.stem] = max(landed.get(file.stem, 0.0), mtime)
    if not landed:
        return Deliveries(frozenset())
    return Deliveries(frozenset(landed), landed[max(landed)])


def pipeline_clock(paths: TarmacPaths | None = None) -> Clock:
    """The replay clock while a replay runs, else the clock of the landing zone's deliveries."""
    paths = paths or TarmacPaths.from_env()
    path = clock_file(paths)
    if not path.exists():
        return Clock(None, deliveries(paths))
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
