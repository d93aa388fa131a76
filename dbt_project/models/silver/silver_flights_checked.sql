{{ config(materialized="ephemeral") }}
{#- Every landed flight row of the window with its typed values, the rules it breaks and its
    disposition; silver_flights, quarantine and load_audit all read from here. -#}
{%- set tz = var("local_timezone") -%}
{%- set bounds = var("value_bounds")["flights"] -%}
{%- set types = {
    "year": "integer", "month": "integer", "day": "integer",
    "dep_time": "integer", "sched_dep_time": "integer", "dep_delay": "integer",
    "arr_time": "integer", "sched_arr_time": "integer", "arr_delay": "integer",
    "carrier": "varchar", "flight": "integer", "tailnum": "varchar",
    "origin": "varchar", "dest": "varchar", "air_time": "integer", "distance": "integer",
    "hour": "integer", "minute": "integer", "time_hour": "timestamptz",
} -%}
{%- set required = ["year", "month", "day", "sched_dep_time", "carrier", "flight", "origin", "dest",
                    "hour", "minute", "time_hour"] -%}
{%- set valid_schedule = "sched_dep_time between 0 and 2359 and sched_dep_time % 100 < 60" -%}

with {{ checked_landing_rows(
    "bronze_flights", types, required, bounds,
    extra_rules=[
        local_date_rules(tz),
        violation("invalid_hhmm", "sched_dep_time is not null and not (" ~ valid_schedule ~ ")",
                  fmt("sched_dep_time {} is not a valid HHMM time of day", ["sched_dep_time"])),
        violation("schedule_mismatch",
                  "sched_dep_time is not null and hour is not null and minute is not null
                   and sched_dep_time <> hour * 100 + minute",
                  fmt("sched_dep_time {} disagrees with hour {} and minute {}", ["sched_dep_time", "hour", "minute"])),
    ],
    extra_nulls=[
        nulled_value("dep_time", "not " ~ valid_hhmm("dep_time"), "'dep_time is not a valid HHMM time (0000-2400)'"),
        nulled_value("arr_time", "not " ~ valid_hhmm("arr_time"), "'arr_time is not a valid HHMM time (0000-2400)'"),
    ],
) }},

keyed as (
    select
        *,
        carrier || '-' || cast(flight as {{ sql_type('varchar') }}) || '-' || origin || '-' || {{ date_digits('landing_date') }} as flight_id
    from ruled
),

disposed as (
    select *, {{ disposition("flight_id") }} as disposition,
        first_value(source_line_number) over key_rows as kept_line_number
    from keyed
    {{ key_window("flight_id") }}
)

select
    * except (violations),
    case
        when disposition = 'quarantined' and {{ list_len("violations") }} = 0 then {{ list_of([struct_of([
            ("rule", "'conflicting_duplicate'"),
            ("reason", fmt("flight {} already delivered at line {} of {} with different values",
                           ["flight_id", "kept_line_number", "source_file"]))])]) }}
        else violations
    end as violations
from disposed
