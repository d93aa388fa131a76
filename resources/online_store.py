"""The online store the batch loads write and the parity check reads."""

from __future__ import annotations

import dagster as dg

from resources.config import TarmacConfig
from tarmac.online.retrieval import open_online_store
from tarmac.online.store import OnlineStore
from tarmac.settings.online import OnlineSettings


class OnlineStoreResource(dg.ConfigurableResource):
    """The configured online store (SQLite under the data dir, or Redis), with the environment's
    overrides (`TARMAC_ONLINE_STORE`, `TARMAC_REDIS_URL`, ...) applied."""

    config: TarmacConfig

    @property
    def settings(self) -> OnlineSettings:
        return self.config.settings.online

    def open(self, namespace: str | None = None) -> OnlineStore:
        """A connection to the store; `namespace` gives a separate one beside it (a scratch store)."""
        return open_online_store(self.settings, self.config.paths, namespace=namespace)
