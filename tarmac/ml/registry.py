"""The model registry: MLflow tracking and registry in one SQLite file under the data directory.

Every trained model is logged as a run (parameters, metrics, plots, signature, lineage tags) and
registered as a new version of one registered model; the `champion` alias names the version that
batch scoring and serving use. MLflow is imported when a registry is opened, never when the
Dagster definitions load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tarmac.paths import TarmacPaths
from tarmac.settings.loader import load_settings

CHAMPION = "champion"
# a model version's features and the versions it was trained with (JSON), set when it is logged
FEATURE_VERSIONS_TAG = "tarmac/feature_versions"
# Types inside a fitted HistGradientBoosting pipeline that skops does not trust by default. We wrote
# the file ourselves, so they are trusted when it is saved and loaded.
TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    tags: Mapping[str, str]
    metrics: Mapping[str, float]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def tracking_uri(paths: TarmacPaths) -> str:
    return f"sqlite:///{paths.mlflow / 'mlflow.db'}"


def champion_version(paths: TarmacPaths | None = None) -> str | None:
    """The champion's version in the data directory's registry, or None. A data directory that has
    never trained a model has no registry, and so no champion: that is answered without opening
    one, which would import MLflow and create its database (about 5 s)."""
    paths = paths or TarmacPaths.from_env()
    if not (paths.mlflow / "mlflow.db").exists():
        return None
    return ModelRegistry.from_settings(paths).champion_version()


class ModelRegistry:
    """One registered model in the data directory's MLflow store."""

    def __init__(self, paths: TarmacPaths, model_name: str, experiment: str):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow
        from mlflow import MlflowClient

        paths.mlflow.mkdir(parents=True, exist_ok=True)
        self._mlflow = mlflow
        self.uri = tracking_uri(paths)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.model_name = model_name
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(experiment, artifact_location=(paths.mlflow / "artifacts").as_uri())
        )

    @classmethod
    def from_settings(cls, paths: TarmacPaths | None = None) -> ModelRegistry:
        """The registry the settings name (`ml.model_name`, `ml.experiment`) in the data directory."""
        settings = load_settings().ml
        return cls(paths or TarmacPaths.from_env(), settings.model_name, settings.experiment)

    def champion_version(self) -> str | None:
        champion = self.champion()
        return champion.version if champion else None

    def log_model(
        self,
        model: Any,
        input_example: Any,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        artifacts: list[Path],
    ) -> RegisteredModel:
        """Log a training run and register its model as a new version (not yet champion)."""
        from mlflow.models import infer_signature

        mlflow = self._use()
        signature = infer_signature(input_example, model.predict_proba(input_example)[:, 1])
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            mlflow.log_params(dict(params))
            mlflow.log_metrics(dict(metrics))
            mlflow.set_tags(dict(tags))
            for path in artifacts:
                mlflow.log_artifact(str(path))
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=input_example.head(5),
                registered_model_name=self.model_name,
                skops_trusted_types=TRUSTED_TYPES,
            )
        version = str(info.registered_model_version)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)
        return RegisteredModel(self.model_name, version, run.info.run_id, dict(tags), dict(metrics))

    def get(self, version: str) -> RegisteredModel:
        found = self.client.get_model_version(self.model_name, version)
        run = self.client.get_run(found.run_id)
        return RegisteredModel(self.model_name, str(found.version), found.run_id, dict(found.tags), dict(run.data.metrics))

    def champion(self) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_model_version_by_alias(self.model_name, CHAMPION)
        except MlflowException:
            return None  # no registered model yet, or no version holds the alias
        return self.get(str(found.version))

    def feature_sets(self) -> dict[str, dict[str, int]]:
        """Each registered version's features at the versions it was trained with (its
        tarmac/feature_versions tag), by version; a version without the tag is left out."""
        found: dict[str, dict[str, int]] = {}
        for version in self.client.search_model_versions(f"name = '{self.model_name}'"):
            logged = (version.tags or {}).get(FEATURE_VERSIONS_TAG)
            if logged:
                found[str(version.version)] = {name: int(v) for name, v in json.loads(logged).items()}
        return dict(sorted(found.items(), key=lambda item: int(item[0]) if item[0].isdigit() else item[0]))

    def promote(self, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, CHAMPION, version)

    def tag_version(self, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)

    def load(self, version: str) -> Any:
        return self._use().sklearn.load_model(f"models:/{self.model_name}/{version}")

    def _use(self) -> Any:
        """MLflow's module-level calls read the process-wide URIs: point both at this store (left
        unset, MLflow 3 would create ./mlflow.db in the working directory)."""
        self._mlflow.set_tracking_uri(self.uri)
        self._mlflow.set_registry_uri(self.uri)
        return self._mlflow
