"""The checks the promotion gate asks of the data a model was trained on."""

from __future__ import annotations

import dagster as dg

from tarmac.ml.promotion import blocking_checks


class TrainingGateResource(dg.ConfigurableResource):
    """The blocking checks of the training set and of everything upstream of it, resolved from the
    whole asset graph when the definitions load: a run's own job holds only the checks it runs."""

    partitioned_checks: list[str] = []
    unpartitioned_checks: list[str] = []

    @classmethod
    def for_graph(cls, asset_graph, training_set: dg.AssetKey) -> TrainingGateResource:
        checks = blocking_checks(asset_graph, [training_set])
        return cls(
            partitioned_checks=[k.to_user_string() for k, daily in checks.items() if daily],
            unpartitioned_checks=[k.to_user_string() for k, daily in checks.items() if not daily],
        )

    @property
    def checks(self) -> dict[dg.AssetCheckKey, bool]:
        """Each check, with whether it is evaluated per day."""
        return {
            **{dg.AssetCheckKey.from_user_string(k): True for k in self.partitioned_checks},
            **{dg.AssetCheckKey.from_user_string(k): False for k in self.unpartitioned_checks},
        }
