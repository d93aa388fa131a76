{#- SPEC §3: every feature of a target flight as of its prediction_ts p, from events at or before p;
    rolling windows are (p - w, p] (see the as_of_window macro). One definition for both consumers:
    gold.flight_features (the partition's flights at sched_dep_ts - horizon) and the offline store
    (any flights at any as-of times, through the analysis of the same name).

    targets: a select of flight_id (unique), flight_date, year, month, hour, carrier, origin, dest,
        tailnum, distance, sched_dep_ts and prediction_ts.
    flights_filter, weather_filter: predicates on silver flights' flight_date and silver weather's
        obs_date that keep every event the targets' windows can reach. Keeping more changes nothing:
        a window only counts events in (p - w, p], and the weather is the latest observation <= p. -#}
{% macro point_in_time_features(targets, flights_filter, weather_filter) %}
{%- set weather_max_age = var("weather_max_age_minutes") | int -%}
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

origin_departures as (
    {{ as_of_window("departures", ["origin"], ["dep_delay"], "1 hour",
        "avg(dep_delay) over w as origin_dep_delay_avg_1h, count(dep_delay) over w as origin_departures_1h") }}
),

origin_cancellations as (
    {{ as_of_window("cancellations", ["origin"], ["is_cancellation"], "3 hour",
        "count(is_cancellation) over w as origin_cancelled_3h") }}
),

carrier_departures as (
    {{ as_of_window("departures", ["carrier"], ["dep_delay"], "24 hour",
        "avg(dep_delay) over w as carrier_dep_delay_avg_24h") }}
),

route_departures as (
    {{ as_of_window("departures", ["origin", "dest"], ["(dep_delay >= 15)::double as delayed_15"], "7 day",
        "avg(delayed_15) over w as route_dep_delay15_rate_7d") }}
),

weather as (
    {{ weather_observations(ref("silver_weather")) }}
    where {{ weather_filter }}
),

latest_weather as (
    -- the latest observation at or before p; too old (> max age) means unknown, not stale values
    select t.flight_id,
        w.event_ts >= t.prediction_ts - to_minutes({{ weather_max_age }}) as is_fresh,
        w.*
    from targets t
    asof left join weather w
        on t.origin = w.origin and t.prediction_ts >= w.event_ts
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
    isodow(t.flight_date) as day_of_week,
    t.month,
    od.origin_dep_delay_avg_1h,
    od.origin_departures_1h,
    oc.origin_cancelled_3h,
    cd.carrier_dep_delay_avg_24h,
    rd.route_dep_delay15_rate_7d,
    case when lw.is_fresh then lw.temp end as temp_f,
    case when lw.is_fresh then lw.wind_speed end as wind_speed_mph,
    case when lw.is_fresh then lw.visib end as visib_mi,
    case when lw.is_fresh then lw.precip end as precip_in,
    case when lw.is_fresh then lw.humid end as humid,
    t.year - p.year as plane_age_years,
    p.seats as plane_seats
from targets t
join origin_departures od using (flight_id)
join origin_cancellations oc using (flight_id)
join carrier_departures cd using (flight_id)
join route_departures rd using (flight_id)
join latest_weather lw using (flight_id)
left join {{ ref("silver_planes") }} p on p.tailnum = t.tailnum
{% endmacro %}
