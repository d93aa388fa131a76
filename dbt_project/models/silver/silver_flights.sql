{{ partitioned_config("flight_date") }}
{{ config(alias="flights") }}
{%- set bounds = var("value_bounds")["flights"] -%}

select
    flight_id,
    landing_date as flight_date,
    year,
    month,
    day,
    carrier,
    flight,
    tailnum,
    origin,
    dest,
    hour,
    minute,
    sched_dep_time,
    {{ hhmm_to_minutes("sched_dep_time") }} as sched_dep_minute_local,
    case when {{ valid_hhmm("dep_time") }} then dep_time end as dep_time,
    {{ hhmm_to_minutes("dep_time") }} as dep_minute_local,
    case when {{ valid_hhmm("arr_time") }} then arr_time end as arr_time,
    sched_arr_time,
    {{ within_bounds("dep_delay", bounds["dep_delay"]) }} as dep_delay,
    {{ within_bounds("arr_delay", bounds["arr_delay"]) }} as arr_delay,
    {{ within_bounds("air_time", bounds["air_time"]) }} as air_time,
    {{ within_bounds("distance", bounds["distance"]) }} as distance,
    -- cancelled is what upstream said (no dep_time at all), not a value we nulled
    {{ na("raw.dep_time") }} is null as cancelled,
    {{ add_minutes('time_hour', 'minute') }} as sched_dep_ts,
    case when {{ na("raw.dep_time") }} is not null
        then {{ add_minutes('time_hour', 'minute + ' ~ within_bounds('dep_delay', bounds['dep_delay'])) }}
    end as dep_ts,
    source_file,
    source_line_number,
    file_checksum,
    load_id,
    now() as loaded_at
from {{ ref("silver_flights_checked") }}
where disposition = 'kept'
{{ rows_by_day("flight_date") }}
