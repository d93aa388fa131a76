"""The data set's calendar: local days as ISO strings, their ranges and runs of consecutive days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from tarmac.paths import FIRST_DAY, LAST_DAY


def days_between(start: str, end: str) -> list[str]:
    """Every ISO day from start to end, both included, clipped to nothing: bad bounds are errors."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    lo, hi = date.fromisoformat(FIRST_DAY), date.fromisoformat(LAST_DAY)
    if first > last:
        raise ValueError(f"start {start} is after end {end}")
    if first < lo or last > hi:
        raise ValueError(f"days {start}..{end} fall outside the data set's {FIRST_DAY}..{LAST_DAY}")
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def next_day(day: str) -> str:
    """The ISO day after `day`."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def contiguous_ranges(days: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted ISO days folded into [first, last] ranges of consecutive days."""
    ranges: list[list[str]] = []
    for day in sorted(set(days)):
        if ranges and date.fromisoformat(day) - date.fromisoformat(ranges[-1][1]) == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(a, b) for a, b in ranges]
