{{ config(materialized="ephemeral") }}
{#- Every landed weather row of the window, typed and ruled like flights (see silver_flights_checked).
    The key is (origin, time_hour) in UTC: the local hour 01 of 2013-11-03 occurs twice (EDT, then
    EST) and both observations are real. -#}
{%- set bounds = var("value_bounds")["weather"] -%}
{%- set types = {
    "origin": "varchar", "year": "integer", "month": "integer", "day": "integer", "hour": "integer",
    "temp": "double", "dewp": "double", "humid": "double", "wind_dir": "double",
    "wind_speed": "double", "wind_gust": "double", "precip": "double", "pressure": "double",
    "visib": "double", "time_hour": "timestamptz",
} -%}

with {{ checked_landing_rows(
    "bronze_weather", types, ["origin", "year", "month", "day", "hour", "time_hour"], bounds,
    extra_rules=[local_date_rules(var("local_timezone"))],
) }},

disposed as (
    select *, {{ disposition("origin, time_hour") }} as disposition,
        first_value(source_line_number) over key_rows as kept_line_number
    from ruled
    {{ key_window("origin, time_hour") }}
)

select
    * except (violations),
    case
        when disposition = 'quarantined' and {{ list_len("violations") }} = 0 then {{ list_of([struct_of([
            ("rule", "'conflicting_duplicate'"),
            ("reason", fmt("observation {} {} already delivered at line {} of {} with different values",
                           ["origin", timestamp_text("time_hour"), "kept_line_number", "source_file"]))])]) }}
        else violations
    end as violations
from disposed
