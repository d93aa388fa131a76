"""What a command checks before its first stage, so that a mistake in the set-up is one clear line at
once, not a traceback minutes in: the data directory can be written, and the services the settings
name answer."""

from __future__ import annotations

import tempfile

from tarmac.orchestration.instance import InstanceError, redact_url
from tarmac.orchestration.recovery import InstanceConfigError
from tarmac.paths import TarmacPaths
from tarmac.settings.loader import SettingsError
from tarmac.settings.online import OnlineSettings
from tarmac.warehouse import WarehouseLockedError


class PreflightError(RuntimeError):
    pass


def check_data_dir(paths: TarmacPaths) -> None:
    """The data directory exists (or can be made) and this process can write files in it."""
    try:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=paths.data_dir, prefix=".write-check-"):
            pass
    except OSError as error:
        raise PreflightError(
            f"TARMAC_DATA_DIR {paths.data_dir} cannot be written ({error.strerror or error}): point "
            "TARMAC_DATA_DIR at a folder this user can write, or fix its permissions"
        ) from None


def check_services(online: OnlineSettings) -> None:
    """The Redis server answers when the online store or the event stream is Redis."""
    if "redis" not in (online.store, online.stream):
        return
    import redis


    client = redis.Redis.from_url(online.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        raise PreflightError(
            f"the online {'store' if online.store == 'redis' else 'event stream'} is Redis, but "
            f"{redact_url(online.redis_url)} does not answer ({error}): start it, point "
            "TARMAC_REDIS_URL (online.redis_url) at a running server, or set TARMAC_ONLINE_STORE=sqlite "
            "and TARMAC_EVENT_STREAM=replay"
        ) from None
    finally:
        client.close()


# errors whose message tells the user what to fix: the command line prints them as one line
USER_ERRORS = (SettingsError, InstanceError, InstanceConfigError, PreflightError, WarehouseLockedError)
