"""Where Tarmac's files are and which settings it runs by: the resource every other one builds on."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from tarmac.paths import TarmacPaths
from tarmac.settings.loader import TarmacSettings, load_settings


class TarmacConfig(dg.ConfigurableResource):
    """The data directory and the settings file.

    Both are usually given by the environment (`dg.EnvVar("TARMAC_DATA_DIR")`, `TARMAC_SETTINGS`),
    resolved in the process that runs the step; unset, they are `./data` and `./tarmac.yaml`. A
    test gives its own paths instead of changing the environment.
    """

    data_dir: str | None = None
    settings_file: str | None = None

    @property
    def paths(self) -> TarmacPaths:
        if self.data_dir:
            return TarmacPaths(Path(self.data_dir).expanduser().resolve())
        return TarmacPaths.from_env()

    @property
    def settings(self) -> TarmacSettings:
        """The validated settings file (read again only when it changes)."""
        return load_settings(Path(self.settings_file).expanduser().resolve() if self.settings_file else None)
