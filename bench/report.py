"""BENCHMARKS.md and its plots, from the figures one `python -m bench` run measured.

    python -m bench.report docs/benchmarks/results.json [--out BENCHMARKS.md]    # re-render, no measuring
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bench.floor_parts import CHECK_STEPS, MODEL_STEP, ONLINE_STEPS
from bench.pipeline import MEDALLION_STEPS

GB = 1e9


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:,.1f} s" if seconds < 600 else f"{seconds:,.0f} s ({seconds / 60:.1f} min)"


def _x(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:,.1f}x"


def _gb(n: int | None) -> str:
    return "–" if not n else f"{n / GB:.2f} GB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def _share(seconds: float | None, total: float) -> str:
    return "–" if seconds is None else f"{_s(seconds)} ({seconds / total:.0%})"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def work(profile: dict, total: float) -> list[tuple[str, float]]:
    """The backfill's time by kind of work, adding up to `total`: dbt's three phases, the checks'
    evaluating and recording, each other step, and the command's time outside any step."""
    steps, before, after = profile["steps"], profile["dbt_before_nodes"], profile["dbt_after_nodes"]
    recording = profile["check_recording_seconds"]
    others = {k: v for k, v in steps.items() if k not in profile["dbt_step_keys"] and not k.endswith("checks")}
    rows = [
        ("dbt: starting and parsing the project (step start → first node)", before),
        ("dbt: running models and tests (first node → last)", profile["dbt_steps_seconds"] - before - after),
        ("dbt steps: row counts, materialization and landing records (last node → step end)", after),
        ("asset checks: evaluating (and drift reports)", profile["check_seconds"] - recording),
        ("asset checks: writing evaluations to the instance", recording),
    ]
    rows += [(f"`{k}`", v) for k, v in sorted(others.items(), key=lambda kv: -kv[1])]
    rows.append(("outside steps (process, definitions, run planning)", total - sum(steps.values())))
    return rows


def plots(results: dict, folder: Path) -> dict[str, Path]:
    """Cost against scale, where the backfill's time goes, and one day's cost against history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    scales = results.get("scales", [])
    if scales:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        sfs = [s["scale_factor"] for s in scales]
        ax.plot(sfs, [s["pipeline"]["seconds"] for s in scales], "o-", label="pipeline: full backfill (make backfill)")
        ax.plot(sfs, [s["pipeline"]["profile"]["medallion_seconds"] for s in scales], "s-",
                label="pipeline: bronze/silver/gold dbt steps")
        ax.plot(sfs, [s["floor"]["seconds"] for s in scales], "^-", label="floor: one DuckDB script (process)")
        if len(sfs) > 1:
            base = scales[0]["floor"]["seconds"]
            ax.plot(sfs, [base * sf / sfs[0] for sf in sfs], ":", color="grey", label="linear in SF from the floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sfs, [str(sf) for sf in sfs])
        ax.set_xlabel("scale factor (copies of each day's flights)")
        ax.set_ylabel("seconds (log)")
        ax.set_title(f"{scales[0]['start']}..{scales[0]['end']}: pipeline vs floor")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        made["scale"] = folder / "cost-vs-scale.png"
        fig.savefig(made["scale"], dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(8.5, 2.6 + 0.4 * len(scales)))
        steps = sorted({k for s in scales for k in s["pipeline"]["profile"]["steps"]},
                       key=lambda k: -scales[-1]["pipeline"]["profile"]["steps"].get(k, 0))
        cmap = plt.get_cmap("tab20")
        for i, s in enumerate(scales):
            left = 0.0
            prof = s["pipeline"]["profile"]
            for j, key in enumerate(steps):
                width = prof["steps"].get(key, 0.0)
                ax.barh(i, width, left=left, color=cmap(j % 20), label=key if i == 0 else None,
                        hatch="//" if key.endswith("checks") else None, edgecolor="white")
                left += width
            other = s["pipeline"]["seconds"] - left
            ax.barh(i, other, left=left, color="lightgrey", label="outside steps" if i == 0 else None)
        ax.set_yticks(range(len(scales)), [f"SF={s['scale_factor']}" for s in scales])
        ax.set_xlabel(f"seconds of the {scales[0]['days']}-day backfill (hatched: asset checks)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        made["steps"] = folder / "backfill-steps.png"
        fig.savefig(made["steps"], dpi=110, bbox_inches="tight")
        plt.close(fig)

    incremental = results.get("incremental", [])
    if len(incremental) > 1:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        keys = sorted({k for r in incremental for k in r["median_steps"]},
                      key=lambda k: -incremental[-1]["median_steps"].get(k, 0))
        width = 0.8 / len(incremental)
        for i, r in enumerate(incremental):
            xs = [j + i * width for j in range(len(keys))]
            ax.bar(xs, [r["median_steps"].get(k, 0) for k in keys], width, label=f"{r['history_days']} days materialized")
        ax.set_xticks([j + width * (len(incremental) - 1) / 2 for j in range(len(keys))], keys, rotation=35,
                      ha="right", fontsize=7)
        ax.set_ylabel("seconds (median run)")
        ax.set_title(f"one day ({results['config']['day']}) re-materialized")
        ax.legend(fontsize=8)
        fig.tight_layout()
        made["incremental"] = folder / "incremental-day.png"
        fig.savefig(made["incremental"], dpi=110)
        plt.close(fig)
    return made


# The performance goals by key: (figure, goal, unit). A figure is read from a run's results by
# `goal_figures`; events/s goals are met at or above the goal, the others at or below.
GOALS = {
    "day": ("one day re-materialized (its daily stage, as the landing sensor runs it)", 10.0, "s"),
    "one_day": ("one-day backfill end to end ÷ floor", 25.0, "x"),
    "year_1": ("year end to end ÷ floor, SF=1", 20.0, "x"),
    "year_10": ("year end to end ÷ floor, SF=10", 6.0, "x"),
    "dbt_10": ("bronze→gold dbt steps ÷ floor, SF=10", 2.0, "x"),
    "checks_1": ("asset-check steps ÷ materialization steps, SF=1", 0.3, "x"),
    "speed": ("speed layer, events/s alone", 150_000.0, "events/s"),
    "get": ("GET /features p99, SQLite store", 2.0, "ms"),
    "post": ("POST /predict p99, SQLite store", 10.0, "ms"),
}
# the request rates the serving goals are set at
GOAL_RATES = {"GET /features": 500.0, "POST /predict": 100.0}


def goal_figures(results: dict) -> dict[str, tuple[float | None, str]]:
    """Each goal's figure in one run's results, with what it was measured at (a rate, a history)."""
    figures: dict[str, tuple[float | None, str]] = {}
    incremental = results.get("incremental", [])
    if incremental:
        last = incremental[-1]
        figures["day"] = (last.get("median_run_seconds"), f"{last['history_days']} days materialized")
    one_day = results.get("one_day")
    if one_day:
        figures["one_day"] = (_ratio(one_day["pipeline"]["seconds"], one_day["floor"]["seconds"]), "")
    for s in results.get("scales", []):
        sf, prof = s["scale_factor"], s["pipeline"]["profile"]
        if sf in (1, 10):
            figures[f"year_{sf}"] = (_ratio(s["pipeline"]["seconds"], s["floor"]["seconds"]), "")
        if sf == 10:
            figures["dbt_10"] = (_ratio(prof["medallion_seconds"], s["floor"]["seconds"]), "")
        if sf == 1:
            figures["checks_1"] = (_ratio(prof["check_seconds"], prof["materialization_seconds"]), "")
    online = results.get("online") or {}
    for t in online.get("throughput", []):
        if "alone" in t["path"] and t.get("events_per_second"):
            figures["speed"] = (t["events_per_second"], "")
    for r in online.get("latency", []):
        name = {"GET /features": "get", "POST /predict": "post"}.get(r["endpoint"])
        if r.get("store") == "sqlite" and "p99_ms" in r and name:
            figures[name] = (r["p99_ms"], f"at {r['rate']:g}/s")
    return figures


def _goal_value(value: float | None, unit: str, note: str) -> str:
    if value is None:
        return "not measured"
    text = {"s": f"{value:.1f} s", "x": _x(value), "events/s": f"{value:,.0f}", "ms": f"{value:.1f} ms"}[unit]
    return f"{text} ({note})" if note else text


def _baseline(results: dict) -> dict | None:
    """The run the goals were set against (bench/baseline.json), unless it is this run."""
    path = Path(__file__).with_name("baseline.json")
    if not path.exists():
        return None
    baseline = json.loads(path.read_text())
    return None if baseline.get("started") == results.get("started") else baseline


def goals_section(results: dict, baseline: dict | None) -> list[str]:
    """The goals table: each figure before (the baseline run) and in this run, the goal, and whether
    this run meets it. A serving figure counts only at the goal's rate."""
    now, before = goal_figures(results), goal_figures(baseline) if baseline else {}
    rows = []
    for key, (name, goal, unit) in GOALS.items():
        value, note = now.get(key, (None, ""))
        at_least = unit == "events/s"
        rate = next((r for endpoint, r in GOAL_RATES.items() if name.startswith(endpoint)), None)
        rate_ok = rate is None or note == f"at {rate:g}/s"
        met = "not measured" if value is None else (
            "yes" if rate_ok and (value >= goal if at_least else value <= goal) else "no")
        earlier, earlier_note = before.get(key, (None, ""))
        rows.append([name, _goal_value(earlier, unit, earlier_note), _goal_value(value, unit, note),
                     ("≥ " if at_least else "≤ ") + _goal_value(goal, unit, ""), met])
    where = (f"the run of commit {baseline.get('commit')} on {baseline.get('started', '?')[:10]} "
             "(bench/baseline.json, the same machine type)") if baseline else "no baseline"
    return ["## Goals", "",
            f"Before: {where}. Now: this run. The serving goals are set at "
            + ", ".join(f"{e} {r:g}/s" for e, r in GOAL_RATES.items()) + ".", "",
            *_table(["figure", "before", "now", "goal", "met"], rows), ""]


def _steps(profile: dict, keys: tuple[str, ...]) -> float | None:
    """The seconds of the profile's steps among `keys`; None when it has none of them."""
    found = [profile["steps"][k] for k in keys if k in profile["steps"]]
    return sum(found) if found else None


def part_ratios(scale: dict) -> dict[str, float | None]:
    """Each part's pipeline steps ÷ its floor (bench.floor_parts) in one scale's results."""
    prof, floors = scale["pipeline"]["profile"], scale.get("part_floors") or {}
    return {
        "checks": _ratio(_steps(prof, CHECK_STEPS), floors.get("checks", {}).get("seconds")),
        "online load": _ratio(_steps(prof, ONLINE_STEPS), floors.get("online", {}).get("seconds")),
        "model fit": _ratio(_steps(prof, (MODEL_STEP,)), floors.get("model", {}).get("seconds")),
    }


def part_floors_section(scale: dict | None) -> list[str]:
    """Each part of the backfill against a floor of its own (bench.floor_parts); nothing for a run
    made before the part floors were measured."""
    if scale is None:
        return []
    prof, floors = scale["pipeline"]["profile"], scale["part_floors"]
    checks, online, model = floors.get("checks") or {}, floors.get("online") or {}, floors.get("model") or {}
    rows = [["bronze→gold: the dbt steps", _s(prof["medallion_seconds"]), _s(scale["floor"]["seconds"]),
             _x(_ratio(prof["medallion_seconds"], scale["floor"]["seconds"]))]]
    notes = [f"- bronze→gold: `bench/floor.sql` computing `gold.flight_features` from the landing files, "
             f"{scale['flights']:,} flights (its process, as in the table above)."]
    if checks:
        covered = _steps(prof, CHECK_STEPS)
        rows += [["asset checks: the steps of bronze, silver, gold and the reference tables", _s(covered),
                  _s(checks["seconds"]), _x(_ratio(covered, checks["seconds"]))],
                 ["asset checks: every check step", _s(prof["check_seconds"]), _s(checks["seconds"]),
                  _x(_ratio(prof["check_seconds"], checks["seconds"]))]]
        notes.append(f"- asset checks: `bench/floor_checks.sql`, the statistics of those steps' checks for each of "
                     f"{checks['days']} days in one SQL pass ({checks['statistic_rows']:,} rows of statistics; its "
                     "header lists what it computes and leaves out). It leaves out the online step's parity replay "
                     "and the ml step's model performance, which the second row's steps include. Of every check step's "
                     f"{_s(prof['check_seconds'])}, {_s(prof.get('check_recording_seconds'))} is writing their "
                     "evaluations to the instance.")
    if online:
        step = _steps(prof, ONLINE_STEPS)
        rows.append(["online load: `online/flights`", _s(step), _s(online["seconds"]), _x(_ratio(step, online["seconds"]))])
        notes.append(f"- online load: {online['rows']:,} flight records of {online['days']} days, the JSON the step "
                     f"writes, built by one DuckDB query ({_s(online['read_seconds'])}) and written into a fresh "
                     f"SQLite store file in one transaction by one executemany ({_s(online['write_seconds'])}, "
                     f"{online['bytes'] / 1e6:,.0f} MB); the step queries and writes a day at a time.")
    if model:
        step = _steps(prof, (MODEL_STEP,))
        if "skipped" in model:
            rows.append(["model: `ml/flight_delay_model`", _s(step), "–", "–"])
            notes.append(f"- model: not measured, {model['skipped']}.")
        else:
            rows.append(["model: `ml/flight_delay_model`", _s(step), _s(model["seconds"]), _x(_ratio(step, model["seconds"]))])
            notes.append(f"- model: `fit_model` alone on {model['rows']['train']:,} training and "
                         f"{model['rows']['validate']:,} validation rows ({model['boosting_iterations']} boosting "
                         f"iterations); reading and splitting gold.training_set before it took {_s(model['read_seconds'])}.")
    return [f"### Each part against its floor, SF={scale['scale_factor']}", "",
            "The floor above covers the bronze→gold models only. `bench.floor_parts` gives the other parts floors of "
            "their own, on the same warehouse after the backfill: the checks' statistics computed by hand in one "
            "DuckDB script, the online load as one bulk write, the model's fit alone (no MLflow, registry, "
            "evaluation or promotion). Each part floor is the best of 3 timings of its work inside its process; "
            "the pipeline figure is the wall time of the steps that do the same work, from the instance's step "
            "records (so it counts their reading, recording and events).", "",
            *_table(["part", "pipeline", "floor", "pipeline ÷ floor"], rows), *notes, ""]


def write_report(results: dict, out: Path) -> None:
    folder = out.parent / "docs" / "benchmarks" if results["mode"] == "full" else out.parent / "plots"
    made = plots(results, folder)
    link = lambda name: os.path.relpath(made[name], out.parent)  # noqa: E731
    config, scales = results["config"], results.get("scales", [])
    one_day, incremental, online = results.get("one_day"), results.get("incremental", []), results.get("online")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench{' --quick' if results['mode'] == 'quick' else ''}`) on "
        f"{results['started']}, in {results.get('seconds', 0) / 60:.0f} min. Every figure below comes from that one "
        "run on one machine, so each ratio compares runs made side by side"
        + (" (section 7 names a run of its own, `python -m bench.engines --merge`, when it was added apart)"
           if results.get("engines", {}).get("started", results["started"]) != results["started"] else "")
        + ". Re-render the text and plots from the run's figures with `python -m bench.report results.json`.",
        "",
    ]
    if results["mode"] == "quick":
        lines += ["**Quick mode: a smoke run of the harness on a few days. Not figures to quote.**", ""]
    m, v = results["machine"], results["versions"]
    lines += ["**Machine:** " + f"{m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, Python {m['python']}.",
              "",
              "**Versions:** " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "",
              f"**Code:** commit {results.get('commit', 'not recorded')}.", ""]

    # headline
    rows = []
    for s in scales:
        prof = s["pipeline"]["profile"]
        rows.append([f"pipeline ÷ floor, {s['days']}-day backfill, SF={s['scale_factor']} ({s['flights']:,} flights)",
                     f"{_x(_ratio(s['pipeline']['seconds'], s['floor']['seconds']))} end to end; "
                     f"{_x(_ratio(prof['medallion_seconds'], s['floor']['seconds']))} for the bronze→gold dbt steps"])
    if one_day:
        rows.append([f"fixed overhead: one day ({one_day['start']}) end to end ÷ floor",
                     _x(_ratio(one_day["pipeline"]["seconds"], one_day["floor"]["seconds"]))])
    if len(incremental) > 1:
        lo, hi = incremental[0], incremental[-1]
        rows.append([f"incremental: one day with {hi['history_days']} vs {lo['history_days']} days materialized",
                     f"{_x(_ratio(hi['median_run_seconds'], lo['median_run_seconds']))} "
                     f"({_s(hi['median_run_seconds'])} vs {_s(lo['median_run_seconds'])})"])
    for s in scales:
        prof = s["pipeline"]["profile"]
        rows.append([f"validation overhead, SF={s['scale_factor']}: asset-check steps ÷ materialization steps",
                     f"{_x(_ratio(prof['check_seconds'], prof['materialization_seconds']))} "
                     f"({_s(prof['check_seconds'])} vs {_s(prof['materialization_seconds'])})"])
    for s in scales:
        if s.get("part_floors"):
            rows.append([f"each part ÷ its floor, SF={s['scale_factor']}",
                         "; ".join(f"{part} {_x(ratio)}" for part, ratio in part_ratios(s).items())])
    for s in scales:
        rows.append([f"peak memory, backfill at SF={s['scale_factor']} (process tree)",
                     f"{_gb(s['pipeline']['peak_rss_bytes'])} (floor {_gb(s['floor']['peak_rss_bytes'])})"])
    if online:
        for t in online.get("throughput", []):
            if t.get("seconds") and "alone" in t["path"]:
                rows.append(["speed layer, events/s (alone)", f"{t['events_per_second']:,.0f}"])
        for r in online.get("latency", []):
            if "events_per_second" in r:
                rows.append([f"push {r['endpoint']}, {r['store']} store: events/s", f"{r['events_per_second']:,.0f}"])
            elif "p50_ms" in r:
                rows.append([f"serving {r['endpoint']} at {r['rate']:g}/s, {r['store']} store: p50 / p99",
                             f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms"])
    lines += ["## Summary", "", *_table(["figure", "measured"], rows)]
    lines += goals_section(results, _baseline(results))

    # 1. floor vs pipeline
    lines += ["## 1. The pipeline against its floor", "",
              "The floor is `bench/floor.sql`: one hand-written DuckDB script that reads the landing CSV files and "
              "computes `gold.flight_features` in one process, applying silver's rules and gold's point-in-time "
              "windows, with no Dagster, no dbt, no lineage and no checks. The pipeline figure is the whole "
              "`make backfill` command (reference tables, bronze, silver, gold, online store, every asset check, "
              "the model and its predictions) from an empty warehouse and instance; the landing files are written "
              "beforehand for both. The floor's output is compared with the pipeline's `gold.flight_features` "
              "cell by cell (floats within 1e-9).", ""]
    rows = []
    for s in scales:
        prof = s["pipeline"]["profile"]
        rows.append([f"SF={s['scale_factor']}", f"{s['flights']:,}", f"{s['landing_bytes'] / 1e6:,.0f} MB",
                     _s(s["floor"]["seconds"]), _s(s["pipeline"]["seconds"]), _s(prof["medallion_seconds"]),
                     _x(_ratio(s["pipeline"]["seconds"], s["floor"]["seconds"])),
                     _x(_ratio(prof["medallion_seconds"], s["floor"]["seconds"])),
                     "equal" if s["comparison"]["equal"] else "**DIFFERENT**"])
    lines += _table(["scale", "flights", "landing files", "floor", "pipeline (backfill)", "bronze→gold dbt steps",
                     "backfill ÷ floor", "dbt steps ÷ floor", "outputs"], rows)
    for s in scales:
        lines.append(f"- SF={s['scale_factor']}: {s['comparison']['summary']}.")
    if len(scales) > 1:
        a, b = scales[0], scales[-1]
        growth = b["scale_factor"] / a["scale_factor"]
        lines += ["", f"From SF={a['scale_factor']} to SF={b['scale_factor']} ({growth:g}x the flights) the floor took "
                  f"{_x(_ratio(b['floor']['seconds'], a['floor']['seconds']))} the time, the backfill "
                  f"{_x(_ratio(b['pipeline']['seconds'], a['pipeline']['seconds']))}, and the bronze→gold dbt steps "
                  f"{_x(_ratio(b['pipeline']['profile']['medallion_seconds'], a['pipeline']['profile']['medallion_seconds']))}."]
    if "scale" in made:
        lines += ["", f"![pipeline and floor against the scale factor]({link('scale')})"]
    lines += [""]
    lines += part_floors_section(next((s for s in scales if s.get("part_floors")), None))

    # where the time goes
    lines += ["### Where the backfill's time goes", "",
              "Each step of each run, from the Dagster instance's step records; for dbt steps, dbt's own elapsed "
              "time from the step's `run_results.json`; the rest of a dbt step is starting dbt and handling its "
              "events, row counts and landing observations. *Outside steps* is the backfill command's time not "
              "spent in a step: starting Python, loading the definitions, planning runs, writing the landing "
              "check.", ""]
    if scales:
        lines += ["By kind of work (each row's share of the backfill in brackets):", ""]
        kinds = [work(s["pipeline"]["profile"], s["pipeline"]["seconds"]) for s in scales]
        labels = list(dict.fromkeys(label for rows in kinds for label, _ in rows))
        rows = [[label, *[_share(dict(k).get(label), s["pipeline"]["seconds"]) for k, s in zip(kinds, scales)]]
                for label in labels]
        rows.append(["**the backfill**", *[_s(s["pipeline"]["seconds"]) for s in scales]])
        rows.append(["*the floor, for scale*", *[_share(s["floor"]["seconds"], s["pipeline"]["seconds"]) for s in scales]])
        lines += _table(["work", *[f"SF={s['scale_factor']}" for s in scales]], rows)
        lines += ["Step by step:", ""]
        keys = sorted({k for s in scales for k in s["pipeline"]["profile"]["steps"]},
                      key=lambda k: -scales[-1]["pipeline"]["profile"]["steps"].get(k, 0))
        header = ["step", *[f"SF={s['scale_factor']}" for s in scales]]
        rows = []
        for key in keys:
            kind = " (checks)" if key.endswith("checks") else (" (dbt)" if key in MEDALLION_STEPS else "")
            rows.append([f"`{key}`{kind}", *[_s(s["pipeline"]["profile"]["steps"].get(key)) for s in scales]])
        rows.append(["*outside steps*", *[_s(s["pipeline"]["seconds"] - sum(s["pipeline"]["profile"]["steps"].values()))
                                          for s in scales]])
        rows.append(["**total**", *[_s(s["pipeline"]["seconds"]) for s in scales]])
        rows.append(["dbt steps: from the step's start to dbt's first node",
                     *[_s(s["pipeline"]["profile"]["dbt_before_nodes"]) for s in scales]])
        rows.append(["dbt steps: dbt running its nodes", *[_s(s["pipeline"]["profile"]["dbt_seconds"]) for s in scales]])
        rows.append(["dbt steps: from dbt's last node to the step's end",
                     *[_s(s["pipeline"]["profile"]["dbt_after_nodes"]) for s in scales]])
        lines += _table(header, rows)
        big = scales[-1]
        nodes = sorted(big["pipeline"]["profile"]["dbt_nodes"].items(), key=lambda kv: -kv[1])[:8]
        lines += [f"Slowest dbt nodes at SF={big['scale_factor']} (dbt's execution time):", "",
                  *_table(["node", "seconds"], [[f"`{n}`", f"{t:,.1f}"] for n, t in nodes])]
        if "steps" in made:
            lines += [f"![the backfill's steps]({link('steps')})", ""]

    # 2. fixed overhead
    if one_day:
        prof = one_day["pipeline"]["profile"]
        lines += ["## 2. Fixed overhead: one day", "",
                  f"A one-day backfill ({one_day['start']}, {one_day['flights']:,} flights) in a fresh workspace, "
                  "end to end, against the floor over that day's files.", ""]
        lines += _table(["", "seconds", "÷ floor"], [
            ["floor (process)", _s(one_day["floor"]["seconds"]), "1.0x"],
            ["floor (its SQL alone)", _s(one_day["floor"]["sql_seconds"]), ""],
            ["pipeline: backfill command", _s(one_day["pipeline"]["seconds"]),
             _x(_ratio(one_day["pipeline"]["seconds"], one_day["floor"]["seconds"]))],
            ["  of which: runs", _s(prof["run_seconds"]), ""],
            ["  of which: bronze→gold dbt steps", _s(prof["medallion_seconds"]), ""],
            ["  of which: from each dbt step's start to dbt's first node", _s(prof["dbt_before_nodes"]), ""],
            ["  of which: dbt running its nodes (models and tests)", _s(prof["dbt_seconds"]), ""],
            ["  of which: asset-check steps", _s(prof["check_seconds"]), ""],
        ])

    # 3. incremental
    if incremental:
        lines += ["## 3. Incremental cost: one day against history", "",
                  f"The daily stage of {config['day']} (bronze, silver, gold, the online load and their checks; what "
                  "the landing sensor launches for a new file), re-materialized in a warehouse holding "
                  f"{' and '.join(str(r['history_days']) for r in incremental)} days; median of "
                  f"{incremental[0]['repeats']} run(s).", ""]
        keys = sorted({k for r in incremental for k in r["median_steps"]}, key=lambda k: -incremental[-1]["median_steps"].get(k, 0))
        header = ["", *[f"{r['history_days']} days" for r in incremental]]
        if len(incremental) > 1:
            header.append(f"{incremental[-1]['history_days']} ÷ {incremental[0]['history_days']}")
        rows = []
        for label, get in [("run (median)", lambda r: r["median_run_seconds"]),
                           ("materialization steps", lambda r: r["median_materialization_seconds"]),
                           ("asset-check steps", lambda r: r["median_check_seconds"]),
                           *[(f"`{k}`", (lambda k: lambda r: r["median_steps"].get(k))(k)) for k in keys]]:  # noqa: B023 (k is bound)
            row = [label, *[_s(get(r)) for r in incremental]]
            if len(incremental) > 1:
                row.append(_x(_ratio(get(incremental[-1]), get(incremental[0]))))
            rows.append(row)
        lines += _table(header, rows)
        lines += ["Every run: " + "; ".join(
            f"{r['history_days']} days: " + ", ".join(_s(x) for x in r["run_seconds"]) for r in incremental), ""]
        if "incremental" in made:
            lines += [f"![one day against history]({link('incremental')})", ""]

    # 4. validation
    lines += ["## 4. Validation overhead", "",
              "Time of the asset-check steps (Pandera contracts, drift, freshness, missing values, ranges, "
              "correlation, training/serving parity) against the materialization steps, in the backfill above. "
              "dbt's own tests run inside `dbt build`, so they count as materialization; their wall time is shown "
              "apart.", ""]
    rows = []
    for s in scales:
        prof = s["pipeline"]["profile"]
        rows.append([f"SF={s['scale_factor']}", _s(prof["materialization_seconds"]), _s(prof["check_seconds"]),
                     _x(_ratio(prof["check_seconds"], prof["materialization_seconds"])), _s(prof["dbt_test_seconds"]),
                     _x(_ratio(prof["check_seconds"] + prof["dbt_test_seconds"],
                               prof["materialization_seconds"] - prof["dbt_test_seconds"]))])
    lines += _table(["scale", "materialization steps", "asset-check steps", "checks ÷ materialization",
                     "dbt tests (inside dbt build)", "(checks + dbt tests) ÷ the rest"], rows)

    # 5. memory
    lines += ["## 5. Memory", "",
              "Peak resident memory of each command's whole process tree (the backfill and its dbt subprocesses), "
              "sampled every 0.2 s.", ""]
    rows = [[f"SF={s['scale_factor']}", _gb(s["pipeline"]["peak_rss_bytes"]), _gb(s["floor"]["peak_rss_bytes"]),
             f"{s['pipeline']['warehouse_bytes'] / 1e9:.2f} GB"] for s in scales]
    if one_day:
        rows.append([f"one day ({one_day['start']})", _gb(one_day["pipeline"]["peak_rss_bytes"]),
                     _gb(one_day["floor"]["peak_rss_bytes"]), f"{one_day['pipeline']['warehouse_bytes'] / 1e9:.2f} GB"])
    lines += _table(["data", "backfill peak", "floor peak", "warehouse file"], rows)

    # 6. real time
    if online:
        lines += ["## 6. The real-time path", "",
                  f"`bench.online` on the SF=1 warehouse: the speed layer over silver's events of "
                  f"{online['events_days'][0]}..{online['events_days'][1]} (best of 3), then one uvicorn worker on "
                  "loopback under an open-loop load at a fixed rate, latency timed from each request's scheduled "
                  "send time (the load generator shares the machine).", ""]
        lines += _table(["speed layer", "events", "events/s", "time ÷ layer alone"], [
            [t["path"], f"{t['events']:,}", f"{t['events_per_second']:,.0f}", _x(t["time_vs_alone"])]
            if t.get("seconds") else [t["path"], f"{t['events']:,}", f"skipped: {t['skipped']}", ""]
            for t in online["throughput"]])
        lines += _table(["store", "endpoint", "rate", "achieved", "p50", "p99", "max", "non-200"], [
            [r["store"], r["endpoint"], f"{r['rate']:g}/s", f"{r['achieved']:.1f}/s", f"{r['p50_ms']:.1f} ms",
             f"{r['p99_ms']:.1f} ms", f"{r['max_ms']:.1f} ms", str(r["non_200"])]
            if "p50_ms" in r else [r["store"], r["endpoint"], f"{r.get('rate', 0):g}/s", f"skipped: {r['skipped']}",
                                   "", "", "", ""]
            for r in online["latency"] if "events_per_second" not in r])
        pushed = [r for r in online["latency"] if "events_per_second" in r]
        if pushed:
            lines += ["Push: silver's events of the same days sent to `POST /events` of a server hosting the speed "
                      "layer (online.stream push), into an empty store, one request after another as a producer "
                      "waiting for each answer sends them.", ""]
            lines += _table(["store", "endpoint", "events", "requests", "seconds", "events/s", "request p50",
                             "request p99", "non-200"], [
                [r["store"], r["endpoint"], f"{r['events']:,}", str(r["requests"]), f"{r['seconds']:.1f}",
                 f"{r['events_per_second']:,.0f}", f"{r['p50_ms']:.1f} ms", f"{r['p99_ms']:.1f} ms", str(r["non_200"])]
                for r in pushed])
    lines += _engines(results.get("engines"))
    if results.get("quality_checks"):
        text = [line for line in results["quality_checks"].splitlines() if not _noise(line)]
        lines += ["## The checks one by one", "",
                  "`bench.quality_checks` on the SF=1 warehouse: each daily check over every materialized day, "
                  "evaluated as the check steps do.", "", "```", *text, "```", ""]
    out.write_text("\n".join(lines).rstrip() + "\n")


def _engines(engines: dict | None) -> list[str]:
    """Section 7: the same backfill on DuckDB and on Spark local[2] (bench.engines)."""
    if not engines:
        return []
    lines = ["## 7. The same models on Spark", "",
             f"`bench.engines` ({engines['started']}, commit {engines.get('commit', 'not recorded')}): `make backfill`'s "
             "command in two fresh workspaces that differ only by `TARMAC_ENGINE`, on the same landing files, each "
             "gold.flight_features compared flight by flight with the floor's (so with each other). Spark runs "
             "dbt-spark's session method on `local[2]` in the step's process, its tables Parquet under "
             "`spark-warehouse/`.", ""]
    rows = []
    for s in engines["scales"]:
        duck, spark = s["duckdb"], s["spark"]
        rows.append([f"SF={s['scale_factor']}, {s['days']} days", _s(duck["seconds"]), _s(spark["seconds"]),
                     _x(_ratio(spark["seconds"], duck["seconds"])),
                     _s(duck["profile"]["dbt_steps_seconds"]), _s(spark["profile"]["dbt_steps_seconds"]),
                     _gb(duck["peak_rss_bytes"]), _gb(spark["peak_rss_bytes"]),
                     "equal" if duck["comparison"]["equal"] and spark["comparison"]["equal"] else
                     f"DuckDB: {duck['comparison']['summary']}; Spark: {spark['comparison']['summary']}"])
    lines += _table(["data", "DuckDB backfill", "Spark backfill", "Spark ÷ DuckDB", "dbt steps, DuckDB",
                     "dbt steps, Spark", "peak, DuckDB", "peak, Spark", "gold vs the floor"], rows)
    lines += [f"A Spark session's start in a fresh process, with one query answered: {_s(engines['jvm_start_seconds'])} "
              "(the JVM, Spark's context and the embedded metastore). A run pays it at its first Spark step; each later "
              "step starts a new session in the same JVM, since every step ends by releasing the metastore for the "
              "next run's process.", ""]
    for s in engines["scales"]:
        duck, spark = s["duckdb"]["profile"], s["spark"]["profile"]
        lines += [f"Where the SF={s['scale_factor']} backfill's time goes (DuckDB, Spark): dbt running its nodes "
                  f"{_s(duck['dbt_seconds'])}, {_s(spark['dbt_seconds'])}; the dbt steps' recording of each day's "
                  f"materializations, row counts and test results {_s(duck['materialization_recording_seconds'])}, "
                  f"{_s(spark['materialization_recording_seconds'])}; the check steps {_s(duck['check_seconds'])}, "
                  f"{_s(spark['check_seconds'])}, of which writing their evaluations to the instance "
                  f"{_s(duck['check_recording_seconds'])}, {_s(spark['check_recording_seconds'])}.", ""]
        keys = [k for k in sorted(spark["steps"], key=lambda k: -spark["steps"][k]) if k in duck["steps"]][:8]
        lines += [f"Steps of the SF={s['scale_factor']} backfill, slowest on Spark first:", ""]
        lines += _table(["step", "DuckDB", "Spark"], [[f"`{k}`", _s(duck["steps"][k]), _s(spark["steps"][k])] for k in keys])
        nodes = sorted(spark["dbt_nodes"].items(), key=lambda kv: -kv[1])[:6]
        lines += ["dbt nodes on Spark, slowest first (DuckDB beside): " + "; ".join(
            f"{name.split('.')[-1]} {_s(seconds)} ({_s(duck['dbt_nodes'].get(name))})" for name, seconds in nodes) + ".", ""]
    return lines


def _noise(line: str) -> bool:
    return "Warning" in line or line.startswith("  return fn(") or line.strip().startswith("dg.AssetCheckSpec(")


def without_noise(output: str) -> str:
    """A command's output without the libraries' warnings (each names a file of the machine it ran on)."""
    return "\n".join(line for line in output.splitlines() if not _noise(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    from tarmac.paths import PROJECT_ROOT

    out = args.out or (PROJECT_ROOT / "BENCHMARKS.md" if results["mode"] == "full" else args.results.with_name("BENCHMARKS.md"))
    write_report(results, out)
    print(f"{out} written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
