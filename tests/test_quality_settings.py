"""The settings file is validated when loaded, with errors that name the file and the key."""

from pathlib import Path

import pytest
import yaml

from tarmac.paths import PROJECT_ROOT
from tarmac.settings.loader import SettingsError, load_settings


def write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((PROJECT_ROOT / "tarmac.yaml").read_text())
    mutate(raw)
    path = tmp_path / "tarmac.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_project_settings_load():
    settings = load_settings(PROJECT_ROOT / "tarmac.yaml")
    assert settings.quality.schema_.blocking is True
    assert settings.quality.drift.gross_margin > settings.quality.drift.error_margin > 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["quality"]["correlation"]["max_abs_delta"].update(warn=0.9),
         "quality.correlation.max_abs_delta: Value error, warn (0.9) must not exceed error (0.6)"),
        (lambda r: r["quality"]["drift"].update(gross_margin=1.5),
         "quality.drift: Value error, gross_margin (1.5) must not be below error_margin (2.0)"),
        (lambda r: r["quality"]["drift"]["persistence"].update(min_days=4),
         "quality.drift.persistence: Value error, min_days (4) must not exceed days (3)"),
        (lambda r: r["quality"].update(reference_windw={"days": 7}), "quality.reference_windw: Extra inputs are not permitted"),
        (lambda r: r["quality"]["missing_values"].update(blocking="sometimes"), "quality.missing_values.blocking: Input should be a valid boolean"),
        (lambda r: r["quality"]["reference_window"].update(start="2013-04-01"), "needs both start and end"),
    ],
)
def test_bad_settings_are_refused_with_the_key(tmp_path, mutate, message):
    path = write(tmp_path, mutate)
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
