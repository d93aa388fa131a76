"""The asset graph as a user sees it in the UI: layers, partitions, look-backs and the writer pool."""

import json

import dagster as dg

from assets.partitions import daily_partitions
from definitions import defs
from tarmac.dbt_project import manifest_path
from tarmac.warehouse import WAREHOUSE_POOL


def _assets_def(*path: str) -> dg.AssetsDefinition:
    return defs.resolve_assets_def(dg.AssetKey(list(path)))


def test_every_dbt_model_is_an_asset_grouped_by_layer():
    manifest = json.loads(manifest_path().read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"]
    graph = defs.resolve_asset_graph()
    for model in models:
        key = dg.AssetKey([model["config"]["schema"], model["alias"]])
        assert graph.has(key), key
        assert model["config"]["schema"] in {"bronze", "silver", "gold"}
        assert graph.get(key).group_name == model["config"]["schema"]


def test_daily_assets_backfill_in_one_run_and_write_through_the_pool():
    daily = _assets_def("gold", "flight_features")
    assert daily.partitions_def == daily_partitions
    assert daily.backfill_policy == dg.BackfillPolicy.single_run()
    assert daily.partitions_def.get_partition_keys()[0] == "2013-01-01"
    assert len(daily.partitions_def.get_partition_keys()) == 365
    for assets_def in (daily, _assets_def("silver", "planes")):
        assert assets_def.node_def.pool == WAREHOUSE_POOL


def test_gold_declares_the_look_back_its_sql_reads():
    manifest = json.loads(manifest_path().read_text())
    lookback = manifest["nodes"]["model.tarmac.gold_flight_features"]["config"]["meta"]["partition_lookback_days"]
    gold = _assets_def("gold", "flight_features")
    flights = gold.get_partition_mapping(dg.AssetKey(["silver", "flights"]))
    weather = gold.get_partition_mapping(dg.AssetKey(["silver", "weather"]))
    assert (flights.start_offset, weather.start_offset) == (-lookback["silver_flights"], -lookback["silver_weather"])
    upstream = flights.get_upstream_mapped_partitions_result_for_partitions(
        daily_partitions.subset_with_partition_keys(["2013-06-15"]), daily_partitions, daily_partitions
    ).partitions_subset.get_partition_keys()
    assert list(upstream) == [f"2013-06-{d:02d}" for d in range(5, 16)]
    # bronze → silver is day for day
    assert _assets_def("silver", "flights").get_partition_mapping(dg.AssetKey(["bronze", "flights"])) is None


def test_column_schemas_are_rendered_from_the_contracts():
    from tarmac.quality.contracts import CONTRACTS

    for key, contract in CONTRACTS.items():
        schema = _assets_def(*key.path).specs_by_key[key].metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(contract.to_schema().columns), key
    weather = _assets_def("silver", "weather").specs_by_key[dg.AssetKey(["silver", "weather"])]
    wind = next(c for c in weather.metadata["dagster/column_schema"].columns if c.name == "wind_speed")
    assert wind.type == "float64" and wind.constraints.nullable
    assert "less_than_or_equal_to(200)" in wind.constraints.other  # silver's domain bound
    assert wind.description == "mph."  # from the dbt YAML
    # a feature's column carries the registry's version, entity, window and owner as tags
    from tarmac.features.registry import feature_registry, format_window

    features = _assets_def("gold", "flight_features").specs_by_key[dg.AssetKey(["gold", "flight_features"])]
    columns = {c.name: c for c in features.metadata["dagster/column_schema"].columns}
    for name, feature in feature_registry().items():
        assert columns[name].tags == {"feature_version": str(feature.version), "entity": feature.entity,
                                      "window": format_window(feature.window), "owner": feature.owner}, name


def test_descriptions_read_as_text_in_the_ui():
    """No asset or check shows dbt's raw SQL as its description, nor text the UI would take for HTML."""
    graph = defs.get_repository_def().asset_graph
    described = [(k.to_user_string(), graph.get(k).description or "") for k in graph.get_all_asset_keys()]
    described += [(k.to_user_string(), graph.get_check_spec(k).description or "") for k in graph.asset_check_keys]
    for name, description in described:
        assert description.strip(), name
        assert "{{" not in description and "select " not in description.lower(), (name, description[:80])
        assert "<" not in description, (name, description)


def test_the_dbt_resource_overrides_hooks_dagster_dbt_still_calls():
    """TarmacDbtCli replaces two private hooks of dagster-dbt's resource (the version probe and the
    adapter it builds per invocation) and runs dbt in process from dagster-dbt's own pieces (and
    dbt-duckdb's connection environment): if an upgrade renames them, this fails instead of the
    override silently doing nothing."""
    import inspect

    import dbt.version
    from dagster_dbt import DbtCliResource

    from resources.dbt import TarmacDbtCli, dbt_cli

    cli_source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli_source and "self._initialize_dbt_core_adapter(" in cli_source
    resource = dbt_cli()
    assert isinstance(resource, TarmacDbtCli)
    assert str(resource._cli_version) == dbt.version.__version__
    assert resource._initialize_dbt_core_adapter(["build"]) is None
    # in process, TarmacDbtCli.cli builds the invocation as DbtCliResource.cli does, from the same
    # helpers, with the process replaced: the helpers and the invocation's fields must still be there
    assert "extract_runtime_selection_from_args(" in cli_source
    assert "get_updated_cli_invocation_params_for_context(" in cli_source
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    assert {"process", "manifest", "dagster_dbt_translator", "project_dir", "target_path", "raise_on_error",
            "cli_version", "project", "context", "adapter"} <= set(DbtCliInvocation.__dataclass_fields__)
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    assert hasattr(DuckDBConnectionManager, "_ENV") and hasattr(DuckDBConnectionManager, "_LOCK")
