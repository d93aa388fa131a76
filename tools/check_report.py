"""The year's check report: how often each check passed, warned and failed, month by month.

`make check-report` evaluates every asset check over a materialized range (`tools.checks.run_checks`,
nothing is materialized) and writes a page, docs/CHECKS.md, with a plot, docs/checks/year.png: per
check and month the days passed, warned and failed with ERROR. The figures are the false-alarm rate
anyone can read: on the real 2013 data every day is clean, so what fails there fails on clean data,
or on the seasons, which the page names.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

RESULTS = ("PASS", "WARN", "ERROR")
MONTHS = [date(2013, m, 1).strftime("%b") for m in range(1, 13)]


@dataclass(frozen=True)
class Evaluation:
    check: str  # asset:check
    day: str
    result: str  # PASS, WARN, ERROR
    summary: str



def daily(rows: Iterable[dict]) -> list[Evaluation]:
    """The evaluations of days (the unpartitioned checks left out) of `tools.checks.as_rows`."""
    return [Evaluation(f"{r['asset']}:{r['check']}", r["day"], r["result"], r["summary"] or "") for r in rows if r["day"]]


def monthly(evaluations: Iterable[Evaluation]) -> dict[str, dict[int, Counter]]:
    """check -> month -> Counter of results."""
    out: dict[str, dict[int, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for e in evaluations:
        out[e.check][int(e.day[5:7])][e.result] += 1
    return out


def window(evaluations: Iterable[Evaluation], check: str, start: str, end: str) -> Counter:
    return Counter(e.result for e in evaluations if e.check == check and start <= e.day <= end)


def plot(by_month: dict[str, dict[int, Counter]], path: Path) -> None:
    """One row per check, one column per month: the share of its days failed with ERROR (red) or
    warned (amber), written in the cell as `errors/warnings`."""
    checks = sorted(by_month)
    error = np.zeros((len(checks), 12))
    warn = np.zeros((len(checks), 12))
    for i, check in enumerate(checks):
        for month in range(1, 13):
            counts = by_month[check].get(month, Counter())
            total = sum(counts.values())
            if total:
                error[i, month - 1] = counts["ERROR"] / total
                warn[i, month - 1] = counts["WARN"] / total
    colours = np.ones((len(checks), 12, 3))
    amber, red = np.array([1.0, 0.75, 0.2]), np.array([0.85, 0.15, 0.15])
    for i in range(len(checks)):
        for j in range(12):
            colours[i, j] = 1 - warn[i, j] * (1 - amber) - error[i, j] * (1 - red)
    fig, ax = plt.subplots(figsize=(12, 0.38 * len(checks) + 1.6))
    ax.imshow(colours, aspect="auto")
    for i, check in enumerate(checks):
        for j in range(12):
            counts = by_month[check].get(j + 1, Counter())
            if sum(counts.values()):
                ax.text(j, i, f"{counts['ERROR']}/{counts['WARN']}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(checks)), checks, fontsize=8)
    ax.set_title("Days failed with ERROR / warned, per check and month of 2013 (red: ERROR share, amber: WARN share;\n"
                 "the checks that passed on every day are left out)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _quiet(evaluations: list[Evaluation], check: str, start: str = "", end: str = "9999") -> bool:
    return all(e.result == "PASS" for e in evaluations if e.check == check and start <= e.day <= end)


def page(evaluations: list[Evaluation], image: Path, out: Path, command: str, seconds: float) -> str:
    by_month = monthly(evaluations)
    checks = sorted(by_month)
    days = sorted({e.day for e in evaluations})
    stable = [c for c in checks if not _quiet(evaluations, c, "2013-09-15", "2013-11-30")]
    loud = [c for c in checks if not _quiet(evaluations, c)]
    lines = [
        "# The year's checks",
        "",
        f"Written by `{command}` on {datetime.now(UTC).isoformat(timespec='seconds')}: every asset check "
        f"evaluated on each day of {days[0]}..{days[-1]} of the real 2013 data, materialized with the default "
        f"`tarmac.yaml` ({len(evaluations)} evaluations of {len(checks)} checks in {seconds:.0f} s). The data is "
        "clean as far as anyone knows, so an ERROR here is a false alarm, a fault of the data itself, or a season "
        "the check was built to show; the last section says which.",
        "",
        f"![per check and month]({image.relative_to(out.parent).as_posix()})",
        "",
        "## The stable season",
        "",
        "2013-09-15..2013-11-30: no holiday but Thanksgiving, a schedule that barely changes.",
        "",
        "| check | days | passed | warned | ERROR | ERROR share |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for check in stable:
        counts = window(evaluations, check, "2013-09-15", "2013-11-30")
        total = sum(counts.values())
        lines.append(f"| {check} | {total} | {counts['PASS']} | {counts['WARN']} | {counts['ERROR']} | "
                     f"{counts['ERROR'] / total:.1%} |")
    lines += [
        "",
        f"The other {len(checks) - len(stable)} checks passed on every day of the season.",
        "",
        "## The year, per check",
        "",
        "| check | days | passed | warned | ERROR | the ERROR days |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for check in loud:
        mine = [e for e in evaluations if e.check == check]
        counts = Counter(e.result for e in mine)
        failed = sorted(e.day for e in mine if e.result == "ERROR")
        shown = ", ".join(failed[:8]) + (f" and {len(failed) - 8} more" if len(failed) > 8 else "")
        lines.append(f"| {check} | {len(mine)} | {counts['PASS']} | {counts['WARN']} | {counts['ERROR']} | {shown} |")
    quiet = [c for c in checks if c not in loud]
    lines += ["", f"The other {len(quiet)} checks passed on every day of the year: " + ", ".join(f"`{c}`" for c in quiet) + ".",
              "", "## Why each ERROR", ""]
    for check in loud:
        failed = [e for e in evaluations if e.check == check and e.result == "ERROR"]
        for e in sorted(failed, key=lambda e: e.day)[:5]:
            lines.append(f"- `{check}` {e.day}: {e.summary[:300]}")
        if len(failed) > 5:
            lines.append(f"- `{check}`: {len(failed) - 5} more ERROR days")
    return "\n".join(lines) + "\n"


def write(evaluations: list[Evaluation], out: Path, image: Path, command: str, seconds: float) -> None:
    """The page, and its plot of the checks that did not pass on every day."""
    by_month = monthly(evaluations)
    plot({c: m for c, m in by_month.items() if not _quiet(evaluations, c)}, image)
    out.write_text(page(evaluations, image, out, command, seconds))
