{{ partitioned_config("flight_date") }}
{{ config(alias="flight_features") }}
{#- The features (docs/design.md#features) of the partition's flights as of prediction_ts =
    sched_dep_ts - horizon (the point_in_time_features macro, shared with the offline store). The
    look-back of each silver input is in this model's meta, so Dagster's partition mapping says
    the same thing. -#}
{%- set lookback = model.config.meta.get("partition_lookback_days", {}) if execute else {} -%}
{%- set horizon = var("prediction_horizon_minutes") | int -%}
{%- set targets -%}
    select
        flight_id, flight_date, year, month, hour, carrier, flight, origin, dest, tailnum, distance,
        sched_dep_ts,
        sched_dep_ts - interval {{ horizon }} minute as prediction_ts
    from {{ ref("silver_flights") }}
    where {{ in_window("flight_date") }}
{%- endset %}

with features as (
    {{ point_in_time_features(
        targets,
        in_window("flight_date", lookback.get("silver_flights", 0)),
        in_window("obs_date", lookback.get("silver_weather", 0)),
    ) }}
)

select *, '{{ run_var("load_id") }}' as load_id, now() as computed_at
from features
{{ rows_by_day("flight_date") }}
