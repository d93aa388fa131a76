{#- The offline store's point-in-time retrieval: the features of any flights as of any times, by the
    macro that builds gold.flight_features. The caller provides `pit_targets` (flight_id, as_of_ts
    timestamptz; one row per flight) on a read-only connection to the warehouse; the flights' static
    attributes and labels come from silver. Compiled at set-up (`make manifest`), so the SQL holds
    no dates: the history read is bounded by the targets' own as-of times. -#}
{%- set lookback = graph.nodes["model.tarmac.gold_flight_features"].config.meta.partition_lookback_days
    if execute else {} -%}
{%- set targets -%}
    select
        f.flight_id, f.flight_date, f.year, f.month, f.hour, f.carrier, f.flight, f.origin, f.dest,
        f.tailnum, f.distance, f.sched_dep_ts,
        r.as_of_ts as prediction_ts
    from pit_targets r
    join {{ ref("silver_flights") }} f using (flight_id)
{%- endset -%}
{#- The look-backs count local days before a flight's date; a UTC as-of date can be one day ahead
    of New York's, hence one more day on each side. -#}
{%- set flights_filter -%}
    flight_date between (select min(as_of_ts) from pit_targets)::date - {{ lookback.get("silver_flights", 0) + 1 }}
        and (select max(as_of_ts) from pit_targets)::date + 1
{%- endset -%}
{%- set weather_filter -%}
    obs_date between (select min(as_of_ts) from pit_targets)::date - {{ lookback.get("silver_weather", 0) + 1 }}
        and (select max(as_of_ts) from pit_targets)::date + 1
{%- endset %}

with features as (
    {{ point_in_time_features(targets, flights_filter, weather_filter) }}
)

select features.*, {{ is_delayed("s.arr_delay") }} as is_delayed
from features
join {{ ref("silver_flights") }} s using (flight_id)
