{#- The speed layer's embedded stream: the feature events (docs/design.md#features) from silver,
    by the macros the batch features are computed with, in event-time order. The caller provides
    `replay_window` (one row: start_ts, end_ts timestamptz) on a read-only connection and gets the
    events with a time in (start_ts, end_ts]. Compiled at set-up (`make manifest`), so the SQL
    holds no dates.
    A departure can leave up to two days after its local scheduled date, and a local date is one
    day off UTC at most: the flights read start three days before the window. -#}
{%- set flights_filter -%}
    flight_date between (select start_ts from replay_window)::date - 3
        and (select end_ts from replay_window)::date + 1
{%- endset -%}
{%- set weather_filter -%}
    obs_date between (select start_ts from replay_window)::date - 1
        and (select end_ts from replay_window)::date + 1
{%- endset %}

with flights as (
    select * from {{ ref("silver_flights") }} where {{ flights_filter }}
),

events as (
    select 'departure' as kind, * from ({{ departure_events("flights") }})
    union all by name
    select 'cancellation' as kind, * from ({{ cancellation_events("flights") }})
    union all by name
    select 'weather' as kind, * from ({{ weather_observations(ref("silver_weather")) }} where {{ weather_filter }})
)

select kind, event_ts, origin, dest, carrier, dep_delay, temp, wind_speed, visib, precip, humid
from events
where event_ts > (select start_ts from replay_window) and event_ts <= (select end_ts from replay_window)
order by event_ts, kind, origin, dest, carrier
