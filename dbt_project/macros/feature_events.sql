{#- The feature events (docs/design.md#features), defined once for the batch features
    (point_in_time_features) and for the speed layer's replay of silver (the analysis
    feature_events): a departure is an event at dep_ts, a cancellation an event at the scheduled
    departure, a weather observation an event at obs_ts. -#}
{% macro departure_events(flights) -%}
    select origin, dest, carrier, dep_ts as event_ts, cast(dep_delay as double) as dep_delay
    from {{ flights }}
    where dep_ts is not null
{%- endmacro %}

{% macro cancellation_events(flights) -%}
    select origin, dest, carrier, sched_dep_ts as event_ts, true as is_cancellation
    from {{ flights }}
    where cancelled
{%- endmacro %}

{% macro weather_observations(weather) -%}
    select origin, obs_ts as event_ts, temp, wind_speed, visib, precip, humid
    from {{ weather }}
{%- endmacro %}
