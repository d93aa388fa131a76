"""The feature registry: one declarative definition per feature (docs/design.md#features).

The definitions live beside the columns that compute them, in the `meta.feature` blocks of
`gold_flight_features` in `dbt_project/models/gold/_gold.yml`, so dbt's docs, the gold contract,
the assets' code versions and the online path all read the same text. It is read with yaml rather
than from the dbt manifest, so it costs nothing at import and works without dbt.

A definition carries a version. The lock file beside this module records each feature's version
and the fingerprint of its definition: a definition that changes without a new version, or a
version that goes down, fails the tests, because a model trained on version N would be fed values
computed another way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tarmac.paths import DBT_PROJECT_DIR

REGISTRY_PATH = DBT_PROJECT_DIR / "models" / "gold" / "_gold.yml"
LOCK_PATH = Path(__file__).with_name("feature_versions.lock.json")
FEATURE_MODEL = "gold_flight_features"
LOCK_COMMAND = "python -m tools.cli features --lock"

SOURCES = ("departures", "cancellations", "weather", "planes", "flight")
AGGREGATIONS = ("mean", "count", "rate", "latest", "static")
DATA_TYPES = ("double", "bigint", "integer", "varchar")
_WINDOW = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_REQUIRED = {"entity", "source", "aggregation", "nullable", "owner", "version"}
_OPTIONAL = {"value", "window", "bounds", "isin", "categorical"}


class FeatureRegistryError(ValueError):
    """A feature definition that is missing a field or holds a value the registry does not know."""


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    entity: str
    dtype: str  # the dbt data_type of the column
    description: str
    source: str
    aggregation: str
    value: str | None  # the source column; None for counts
    window: timedelta | None  # (p - window, p]; the maximum age for `latest`; None for static
    nullable: bool
    bounds: tuple[float | None, float | None] | str | None  # [low, high] or "dataset.column" of value_bounds
    isin: tuple[str, ...] | None
    categorical: bool
    owner: str
    version: int


def parse_window(text: str) -> timedelta:
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a window like 30m, 1h or 7d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def format_window(window: timedelta | None) -> str:
    """The window as the registry writes it (1h, 7d), or "-" for none."""
    if window is None:
        return "-"
    minutes = int(window.total_seconds()) // 60
    unit, size = next((u, n) for u, n in (("d", 1440), ("h", 60), ("m", 1)) if minutes % n == 0)
    return f"{minutes // size}{unit}"


@dataclass(frozen=True)
class Vocabulary:
    """What the definitions' words mean, from the feature model's meta: the columns each entity is
    keyed by (online, and in the batch SQL's windows) and the threshold a `rate` counts from."""

    entity_keys: dict[str, tuple[str, ...]]
    rate_threshold: float


def parse_vocabulary(document: Mapping[str, Any]) -> Vocabulary:
    model = next((m for m in document.get("models") or [] if m.get("name") == FEATURE_MODEL), None)
    meta = ((model or {}).get("config") or {}).get("meta") or {}
    where = f"{REGISTRY_PATH.name}: model {FEATURE_MODEL}, config.meta"
    entities, threshold = meta.get("feature_entities"), meta.get("rate_threshold")
    if not isinstance(entities, Mapping) or not entities or not all(
        isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys) for keys in entities.values()
    ):
        raise FeatureRegistryError(f"{where}.feature_entities: {entities!r} is not a mapping of entity to key columns")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool):
        raise FeatureRegistryError(f"{where}.rate_threshold: {threshold!r} is not a number")
    return Vocabulary({name: tuple(keys) for name, keys in entities.items()}, threshold)


@cache
def vocabulary() -> Vocabulary:
    return parse_vocabulary(yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8")))


def entity_keys(entity: str) -> tuple[str, ...]:
    """The columns a feature of `entity` is keyed by."""
    return vocabulary().entity_keys[entity]


def _definition(column: Mapping[str, Any], spec: Mapping[str, Any], entities: Iterable[str]) -> FeatureDefinition:
    def fail(field: str, problem: str) -> FeatureRegistryError:
        return FeatureRegistryError(f"{REGISTRY_PATH.name}: feature {column['name']!r}, field {field!r}: {problem}")

    if missing := sorted(_REQUIRED - spec.keys()):
        raise fail(missing[0], "is required")
    if unknown := sorted(spec.keys() - _REQUIRED - _OPTIONAL):
        raise fail(unknown[0], f"is not a feature field (known: {', '.join(sorted(_REQUIRED | _OPTIONAL))})")
    for field, allowed in (("entity", tuple(entities)), ("source", SOURCES), ("aggregation", AGGREGATIONS)):
        if spec[field] not in allowed:
            raise fail(field, f"{spec[field]!r} is not one of {', '.join(allowed)}")
    if column.get("data_type") not in DATA_TYPES:
        raise fail("data_type", f"{column.get('data_type')!r} is not one of {', '.join(DATA_TYPES)}")
    if not str(column.get("description") or "").strip():
        raise fail("description", "is required")
    aggregation, value, window = spec["aggregation"], spec.get("value"), spec.get("window")
    if (value is None) != (aggregation == "count"):
        raise fail("value", "counts take no value" if value is not None else f"a {aggregation} needs its source column")
    if (window is None) != (aggregation == "static"):
        raise fail("window", "static features have no window" if window is not None else f"a {aggregation} needs a window")
    try:
        window = parse_window(str(window)) if window is not None else None
    except ValueError as e:
        raise fail("window", str(e)) from None
    version = spec["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail("version", f"{version!r} is not a positive integer")
    for field in ("nullable", "categorical"):
        if not isinstance(spec.get(field, False), bool):
            raise fail(field, f"{spec[field]!r} is not true or false")
    if not isinstance(spec["owner"], str) or not spec["owner"]:
        raise fail("owner", "is required, e.g. team:ml-features")
    isin = spec.get("isin")
    if isin is not None and (not isinstance(isin, list) or not isin or not all(isinstance(v, str) for v in isin)):
        raise fail("isin", f"{isin!r} is not a list of values")
    try:
        bounds = _bounds(spec.get("bounds"))
    except ValueError as e:
        raise fail("bounds", str(e)) from None
    return FeatureDefinition(
        name=column["name"], entity=spec["entity"], dtype=column["data_type"],
        description=str(column["description"]).strip(), source=spec["source"], aggregation=aggregation,
        value=value, window=window, nullable=spec["nullable"], bounds=bounds,
        isin=tuple(isin) if isin is not None else None, categorical=spec.get("categorical", False),
        owner=spec["owner"], version=version,
    )


def _bounds(raw: Any) -> tuple[float | None, float | None] | str | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        if set(raw) != {"from"} or not re.match(r"^\w+\.\w+$", str(raw["from"])):
            raise ValueError(f"{raw!r} is not {{from: dataset.column}}")
        return raw["from"]
    numbers = isinstance(raw, list) and len(raw) == 2 and raw != [None, None] and all(
        b is None or (isinstance(b, int | float) and not isinstance(b, bool)) for b in raw
    )
    if not numbers or (None not in raw and raw[0] > raw[1]):
        raise ValueError(f"{raw!r} is not [low, high] (null for an open end)")
    return (raw[0], raw[1])


def parse_registry(document: Mapping[str, Any]) -> dict[str, FeatureDefinition]:
    """The features of a dbt properties document (the parsed `_gold.yml`), in column order."""
    entities = parse_vocabulary(document).entity_keys
    registry: dict[str, FeatureDefinition] = {}
    for model in document.get("models") or []:
        for column in model.get("columns") or []:
            spec, name = (column.get("meta") or {}).get("feature"), column["name"]
            if spec is None:
                continue
            where = f"{REGISTRY_PATH.name}: feature {name!r}"
            if model["name"] != FEATURE_MODEL:
                raise FeatureRegistryError(f"{where} is on {model['name']}; features are defined on {FEATURE_MODEL}")
            if name in registry:
                raise FeatureRegistryError(f"{where}, field 'name': defined twice")
            if not isinstance(spec, Mapping):
                raise FeatureRegistryError(f"{where}, field 'meta.feature': {spec!r} is not a mapping")
            registry[name] = _definition(column, spec, entities)
    return registry


@cache
def feature_registry() -> dict[str, FeatureDefinition]:
    """Every feature, ordered as the columns of gold.flight_features."""
    return parse_registry(yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8")))


def model_features() -> list[str]:
    return list(feature_registry())


def categorical_features() -> list[str]:
    return [name for name, feature in feature_registry().items() if feature.categorical]


def feature_versions() -> dict[str, int]:
    return {name: feature.version for name, feature in feature_registry().items()}


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def features_fingerprint(names: Iterable[str] | None = None) -> str:
    """A short stable hash of the features' name:version pairs: it changes when one is bumped."""
    registry = feature_registry()
    selected = sorted(registry if names is None else set(names))
    if unknown := [n for n in selected if n not in registry]:
        raise KeyError(f"not in the feature registry: {', '.join(unknown)}")
    return _digest([f"{n}:{registry[n].version}" for n in selected])


def definition_fingerprint(feature: FeatureDefinition) -> str:
    """A hash of what a feature computes: not its name, version, owner or the wording of its description."""
    content = {k: v for k, v in asdict(feature).items() if k not in {"name", "version", "owner", "description"}}
    content["window"] = feature.window.total_seconds() if feature.window is not None else None
    return _digest(content)


def lock_entries(registry: Mapping[str, FeatureDefinition]) -> dict[str, dict[str, Any]]:
    return {n: {"version": f.version, "fingerprint": definition_fingerprint(f)} for n, f in registry.items()}


def read_lock(path: Path = LOCK_PATH) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def unversioned_changes(registry: Mapping[str, FeatureDefinition], lock: Mapping[str, Any]) -> list[str]:
    """Definitions changed under the same version, and versions that went down: never lockable."""
    problems = []
    for name, entry in lock_entries(registry).items():
        version, locked = entry["version"], lock.get(name, {"version": 0})
        if version < locked["version"]:
            problems.append(f"{name}: version {version} is below the locked {locked['version']}; versions never go down")
        elif version == locked["version"] and entry["fingerprint"] != locked["fingerprint"]:
            problems.append(f"{name}: its definition changed but its version is still {version}: "
                            f"bump its version to {version + 1} and run `{LOCK_COMMAND}`")
    return problems


def stale_lock_entries(registry: Mapping[str, FeatureDefinition], lock: Mapping[str, Any]) -> list[str]:
    """Features whose new version, addition or removal the lock file does not record yet."""
    current = lock_entries(registry)
    stale = [f"{n}: not recorded as version {e['version']}" for n, e in current.items() if lock.get(n) != e]
    stale += [f"{n}: in the lock file but no longer in the registry" for n in lock if n not in current]
    return stale


def write_lock(registry: Mapping[str, FeatureDefinition], path: Path = LOCK_PATH) -> None:
    """Record the registry's versions, refusing a definition changed without a new version."""
    if problems := unversioned_changes(registry, read_lock(path)):
        raise FeatureRegistryError("not locked:\n" + "\n".join(problems))
    path.write_text(json.dumps(lock_entries(registry), indent=2) + "\n", encoding="utf-8")
