"""The MLflow model registry the model asset registers in and batch scoring loads the champion from."""

from __future__ import annotations

import dagster as dg

from resources.config import TarmacConfig
from tarmac.ml.registry import ModelRegistry


class ModelRegistryResource(dg.ConfigurableResource):
    """The data dir's MLflow store and the settings' registered model (`ml.model_name`)."""

    config: TarmacConfig

    def open(self) -> ModelRegistry:
        """The registry (imports MLflow: a step's cost, never the definitions')."""
        settings = self.config.settings.ml
        return ModelRegistry(self.config.paths, settings.model_name, settings.experiment)
