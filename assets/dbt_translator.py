"""How dbt models become Dagster assets: keys by layer schema, groups by layer, look-back mappings,
column schemas rendered from the tables' Pandera contracts, and code versions that follow the
versions of the features a model computes."""

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings
from dagster_shared.record import replace

from assets.partitions import daily_partitions
from tarmac.features.registry import FEATURE_MODEL, feature_registry, features_fingerprint, format_window
from tarmac.paths import DBT_PROJECT_DIR
from tarmac.quality.contracts import column_schema

# the dbt tag of the daily models (their `partitioned_config`, dbt_project/macros/partition_window.sql)
PARTITIONED_TAG = "partitioned"


class TarmacDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # bronze/flights, silver/quarantine, gold/flight_features: the DuckDB schema and table name
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        alias = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([dbt_resource_props["config"]["schema"], alias])

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        if dbt_resource_props["resource_type"] == "model":
            descriptions = {n: c.get("description") for n, c in dbt_resource_props.get("columns", {}).items()}
            tags = None
            if _computes_features(dbt_resource_props):  # the registry documents the columns it selects
                registry = {n: f.description for n, f in feature_registry().items()}
                descriptions = {**registry, **{n: d for n, d in descriptions.items() if d}}
                tags = {n: {"feature_version": str(f.version), "entity": f.entity, "window": format_window(f.window),
                            "owner": f.owner} for n, f in feature_registry().items()}
            schema = column_schema(self.get_asset_key(dbt_resource_props), descriptions, tags)
            if schema is not None:
                metadata["dagster/column_schema"] = schema
        return metadata

    def get_code_version(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # dagster-dbt's version is the model file's checksum; the SQL that gold's features share
        # with the offline store lives in macros, so their text counts too. Bumping a feature's
        # version changes the code version of the models that compute it, so Dagster shows their
        # materialized partitions as built by other code.
        version = super().get_code_version(dbt_resource_props)
        macros = [m.split(".")[-1] for m in dbt_resource_props.get("depends_on", {}).get("macros", [])
                  if m.startswith(f"macro.{dbt_resource_props.get('package_name', 'tarmac')}.")]
        if version and macros:
            version = f"{version[:16]}-m{macros_digest(tuple(sorted(macros)))}"
        if _computes_features(dbt_resource_props):
            return f"{version}-f{features_fingerprint()}"
        return version

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # dagster-dbt falls back to the model's raw SQL, which reads as noise in the UI: the model's
        # own description, or where its SQL lives
        description = (dbt_resource_props.get("description") or "").strip()
        if description:
            return description
        path = dbt_resource_props.get("original_file_path")
        kind = dbt_resource_props["resource_type"]
        return f"dbt {kind} `{dbt_resource_props['name']}`" + (f" (`dbt_project/{path}`)" if path else "")

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return dbt_resource_props["source_name"]
        return dbt_resource_props["config"].get("schema")

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetCheckSpec | None:
        # a partitioned model's tests are partitioned checks: each day of a run gets the result
        # of the test that covered it (assets/medallion.py), and the UI shows it per day
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        if not (spec.description or "").strip():
            spec = replace(spec, description=_test_description(manifest["nodes"].get(unique_id, {})))
        if PARTITIONED_TAG in (asset_spec.tags or {}):
            spec = replace(spec, partitions_def=daily_partitions)
        return spec

    def get_partition_mapping(
        self,
        dbt_resource_props: Mapping[str, Any],
        dbt_parent_resource_props: Mapping[str, Any],
    ) -> dg.PartitionMapping | None:
        # A model that reads N earlier days of a parent says so in its meta; the same number
        # drives its SQL, so the dependency Dagster sees is the one the query has.
        lookback = dbt_resource_props["config"].get("meta", {}).get("partition_lookback_days", {})
        days = lookback.get(dbt_parent_resource_props["name"])
        if days:
            # the first days of the year have no earlier history: that is not a missing input
            return dg.TimeWindowPartitionMapping(
                start_offset=-int(days), end_offset=0, allow_nonexistent_upstream_partitions=True
            )
        return None


def _test_description(test: Mapping[str, Any]) -> str:
    """What a dbt test asserts, for a test without a description: a generic test by its name and
    column, a singular one by its file."""
    metadata = test.get("test_metadata") or {}
    if metadata:
        column = (metadata.get("kwargs") or {}).get("column_name")
        return f"dbt test `{metadata.get('name')}`" + (f" on `{column}`" if column else "")
    return f"dbt test `{test.get('name', '?')}` (`dbt_project/{test.get('original_file_path', 'tests')}`)"


def _computes_features(dbt_resource_props: Mapping[str, Any]) -> bool:
    """The model that defines the features computes all of them, and so does every model that refs
    it (gold_training_set selects f.*). Column names would not do: silver_flights has a month too."""
    if dbt_resource_props["resource_type"] != "model":
        return False
    models = [dbt_resource_props.get("unique_id", ""), *dbt_resource_props.get("depends_on", {}).get("nodes", [])]
    return any(m.startswith("model.") and m.endswith(f".{FEATURE_MODEL}") for m in models)


_MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\s*\(")
_CALL = re.compile(r"\b(\w+)\s*\(")


@cache
def _project_macros() -> dict[str, tuple[str, frozenset[str]]]:
    """Each project macro's name, the text of the file that defines it and the names that file
    calls (read once: a search per pair of macros cost seconds at every start of a process that
    loads the definitions)."""
    out = {}
    for path in sorted((DBT_PROJECT_DIR / "macros").rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        out.update(dict.fromkeys(_MACRO.findall(text), (text, frozenset(_CALL.findall(text)))))
    return out


@cache
def macros_digest(names: tuple[str, ...]) -> str:
    """A hash of these macros' files and of every project macro they call, transitively."""
    macros = _project_macros()
    seen, todo = set(), [n for n in names if n in macros]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [other for other in macros[name][1] if other in macros and other not in seen]
    digest = hashlib.sha256()
    for text in sorted({macros[n][0] for n in seen}):
        digest.update(text.encode())
    return digest.hexdigest()[:12]
