{#- Every feature of a target flight as of its prediction_ts p, from events at or before p
    (docs/design.md#features); rolling windows are (p - w, p] (see the as_of_window macro). The
    rolling windows and the weather features are generated from the feature registry
    (feature_registry.sql), as the speed layer's are; the flight's and the plane's own attributes
    are the columns below. One definition for both consumers: gold.flight_features (the
    partition's flights at sched_dep_ts - horizon) and the offline store (any flights at any as-of
    times, through the analysis of the same name).

    targets: a select of flight_id (unique), flight_date, year, month, hour, carrier, origin, dest,
        tailnum, distance, sched_dep_ts and prediction_ts.
    flights_filter, weather_filter: predicates on silver flights' flight_date and silver weather's
        obs_date that keep every event the targets' windows can reach. Keeping more changes nothing:
        a window only counts events in (p - w, p], and the weather is the latest observation <= p. -#}
{% macro point_in_time_features(targets, flights_filter, weather_filter) %}
with targets as (
    {{ targets }}
),

history as (
    select origin, dest, carrier, cancelled, sched_dep_ts, dep_ts, dep_delay
    from {{ ref("silver_flights") }}
    where {{ flights_filter }}
),

departures as (
    {{ departure_events("history") }}
),

cancellations as (
    {{ cancellation_events("history") }}
),

{%- set window_groups = registry_window_groups() %}
{%- for group in window_groups %}
window_{{ loop.index }} as (
    -- {{ group.source }} by {{ group.entity }}, ({{ "p - " ~ group.window }}, p]
    {{ registry_window(group) }}
),
{% endfor %}

weather as (
    {{ weather_observations(ref("silver_weather")) }}
    where {{ weather_filter }}
),

latest_weather as (
    -- the latest observation at or before p (each weather feature's window says how old it may be)
    {{ latest_observation("targets", "weather") }}
)

select
    t.flight_id,
    t.flight_date,
    t.sched_dep_ts,
    t.prediction_ts,
    t.carrier,
    t.origin,
    t.dest,
    t.distance as distance_mi,
    t.hour as dep_hour_local,
    {{ iso_day_of_week('t.flight_date') }} as day_of_week,
    t.month,
    {#- weather: the latest observation at or before p, unknown (not stale values) once older than the window #}
    {%- for feature in registry_features() if feature.aggregation in ("mean", "count", "rate", "latest") %}
    {%- if feature.aggregation == "latest" %}
    case when lw.event_ts >= t.prediction_ts - interval {{ registry_interval(feature.window) }}
        then lw.{{ feature.value }} end as {{ feature.name }},
    {%- else %}
    {%- for group in window_groups %}{% if feature in group.features %}
    window_{{ loop.index }}.{{ feature.name }},
    {%- endif %}{% endfor %}
    {%- endif %}
    {%- endfor %}
    t.year - p.year as plane_age_years,
    p.seats as plane_seats
from targets t
{%- for group in window_groups %}
join window_{{ loop.index }} using (flight_id)
{%- endfor %}
join latest_weather lw using (flight_id)
left join {{ planes_or_none() }} p on p.tailnum = t.tailnum
{% endmacro %}

{% macro planes_or_none() -%}
    {#- silver.planes, or no planes at all while the reference tables have never been built (a fresh
        instance whose first backfill selected only the daily assets): the plane features are then
        NULL, as for an unknown tail number, and the downstream refresh rebuilds the days once the
        reference tables land. Only a model checks: the compiled analyses always name the table. -#}
    {%- set planes = ref("silver_planes") -%}
    {%- if execute and model.resource_type == "model" and load_relation(planes) is none -%}
        (select cast(null as {{ sql_type('varchar') }}) as tailnum, cast(null as integer) as year, cast(null as integer) as seats where false)
    {%- else -%}
        {{ planes }}
    {%- endif -%}
{%- endmacro %}

{#- Each target's latest observation at or before its prediction time, at its origin: the
    observation's columns, all NULL when there is none. -#}
{% macro latest_observation(targets, observations) %}{{ return(adapter.dispatch("latest_observation", "tarmac")(targets, observations)) }}{% endmacro %}

{% macro default__latest_observation(targets, observations) %}
    select t.flight_id, w.*
    from {{ targets }} t
    asof left join {{ observations }} w
        on t.origin = w.origin and t.prediction_ts >= w.event_ts
{% endmacro %}

{% macro spark__latest_observation(targets, observations) %}
    {#- No ASOF join: the observations and the targets as one stream per origin, ordered by time with
        an observation before a target of the same instant (it is "at or before"), and each target
        takes the last observation seen so far. -#}
    select flight_id, latest.*
    from (
        select
            flight_id,
            is_target,
            last_value(observation, true) over (
                partition by origin order by ts, is_target
                rows between unbounded preceding and current row) as latest
        from (
            select origin, event_ts as ts, 0 as is_target, struct(w.*) as observation,
                cast(null as string) as flight_id
            from {{ observations }} w
            union all
            select origin, prediction_ts as ts, 1 as is_target, null as observation, flight_id
            from {{ targets }}
        ) stream
    ) merged
    where is_target = 1
{% endmacro %}
