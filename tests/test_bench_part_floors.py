"""The benchmark report's part floors: each part's pipeline steps against its floor, and runs made
before the part floors were measured still render."""

from __future__ import annotations

from bench.report import part_floors_section, part_ratios


def _scale(part_floors: dict | None = None) -> dict:
    steps = {"bronze_daily_checks": 20.0, "silver_daily_checks": 50.0, "gold_daily_checks": 70.0,
             "reference_checks": 1.0, "online_daily_checks": 60.0, "online__flights": 16.0,
             "ml__flight_delay_model": 15.0, "daily_gold_models": 17.0}
    scale = {"scale_factor": 1, "flights": 336_776, "floor": {"seconds": 5.0},
             "pipeline": {"profile": {"steps": steps, "check_seconds": 201.0, "medallion_seconds": 75.0}}}
    if part_floors is not None:
        scale["part_floors"] = part_floors
    return scale


FLOORS = {
    "checks": {"seconds": 4.7, "days": 365, "statistic_rows": 100_000},
    "online": {"seconds": 8.0, "read_seconds": 3.0, "write_seconds": 5.0, "rows": 336_776, "days": 365,
               "bytes": 300_000_000},
    "model": {"seconds": 5.0, "read_seconds": 1.0, "rows": {"train": 244_737, "validate": 28_618, "test": 53_991},
              "boosting_iterations": 48},
}


def test_each_part_is_set_against_its_own_floor():
    ratios = part_ratios(_scale(FLOORS))
    # the checks floor covers the check steps of bronze, silver, gold and the reference tables
    assert ratios == {"checks": 141.0 / 4.7, "online load": 2.0, "model fit": 3.0}
    lines = "\n".join(part_floors_section(_scale(FLOORS)))
    assert "| bronze→gold: the dbt steps | 75.0 s | 5.0 s | 15.0x |" in lines
    assert "| asset checks: the steps of bronze, silver, gold and the reference tables | 141.0 s | 4.7 s | 30.0x |" in lines
    assert "| asset checks: every check step | 201.0 s | 4.7 s | 42.8x |" in lines
    assert "| online load: `online/flights` | 16.0 s | 8.0 s | 2.0x |" in lines
    assert "| model: `ml/flight_delay_model` | 15.0 s | 5.0 s | 3.0x |" in lines


def test_an_older_run_renders_without_part_floors_and_its_online_step_is_found():
    assert part_floors_section(None) == []
    assert part_ratios(_scale()) == {"checks": None, "online load": None, "model fit": None}
    older = _scale({"online": FLOORS["online"]})
    older["pipeline"]["profile"]["steps"]["online__flight_features"] = older["pipeline"]["profile"]["steps"].pop(
        "online__flights")
    assert part_ratios(older)["online load"] == 2.0


def test_a_model_not_trained_has_no_floor():
    skipped = _scale({"model": {"skipped": "14 days of the split have no training set"}})
    lines = "\n".join(part_floors_section(skipped))
    assert "| model: `ml/flight_delay_model` | 15.0 s | – | – |" in lines
    assert "not measured, 14 days of the split have no training set" in lines
    assert part_ratios(skipped)["model fit"] is None
