"""A mistake in the set-up is one clear line naming the file, key or path, at once: not a traceback,
and not a failure minutes into a backfill."""

from __future__ import annotations

from tarmac.paths import PROJECT_ROOT
from tools.cli import main

BACKFILL = ["backfill", "--start", "2013-01-01", "--end", "2013-01-01", "--in-process"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    (line,) = [text for text in err if text.startswith("tarmac backfill: ")]
    return line


def test_a_bad_settings_file_is_one_line_naming_file_and_key(tmp_path, monkeypatch, capsys, paths, dagster_home):
    bad = tmp_path / "bad.yaml"
    bad.write_text((PROJECT_ROOT / "tarmac.yaml").read_text().replace("min_rows: 50", "min_rows: many", 1))
    monkeypatch.setenv("TARMAC_SETTINGS", str(bad))
    assert main(BACKFILL) == 2
    line = _one_line_error(capsys)
    assert str(bad) in line and "quality.drift.min_rows" in line and "'many'" in line, line


def test_an_unreachable_redis_store_is_refused_before_the_first_stage(monkeypatch, capsys, paths, dagster_home):
    monkeypatch.setenv("TARMAC_ONLINE_STORE", "redis")
    monkeypatch.setenv("TARMAC_REDIS_URL", "redis://:secret@127.0.0.1:1/0")
    assert main(BACKFILL) == 2
    line = _one_line_error(capsys)
    assert "redis://:***@127.0.0.1:1/0 does not answer" in line and "secret" not in line, line
    assert not paths.landing.exists()  # refused before anything was landed or run


def test_a_data_dir_that_cannot_be_written_is_named(tmp_path, monkeypatch, capsys, dagster_home):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TARMAC_DATA_DIR", str(blocker / "data"))
    assert main(BACKFILL) == 2
    line = _one_line_error(capsys)
    assert f"TARMAC_DATA_DIR {blocker / 'data'} cannot be written" in line, line


def test_an_instance_whose_pool_admits_several_writers_is_refused(tmp_path, monkeypatch, capsys, paths):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 2\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(BACKFILL) == 2
    line = _one_line_error(capsys)
    assert f"{home / 'dagster.yaml'}: concurrency.pools.default_limit is 2, not 1" in line, line


def test_check_on_a_range_nothing_was_materialized_for_says_so(capsys, paths, dagster_home):
    assert main(["check", "--start", "2013-02-10", "--end", "2013-02-14", "--in-process"]) == 2
    out, err = capsys.readouterr()
    assert "gold/flight_features: not materialized on 2013-02-10, 2013-02-11, 2013-02-12, 2013-02-13, 2013-02-14" in out
    assert err.strip() == "tarmac check: nothing is materialized for 2013-02-10..2013-02-14: run `make backfill` first"
