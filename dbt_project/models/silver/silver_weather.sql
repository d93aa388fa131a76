{{ partitioned_config("obs_date") }}
{{ config(alias="weather") }}
{%- set bounds = var("value_bounds")["weather"] -%}

select
    origin,
    time_hour as obs_ts,
    landing_date as obs_date,
    hour as obs_hour_local,
    {%- for column in ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"] %}
    {{ within_bounds(column, bounds[column]) }} as {{ column }},
    {%- endfor %}
    source_file,
    source_line_number,
    file_checksum,
    load_id,
    now() as loaded_at
from {{ ref("silver_weather_checked") }}
where disposition = 'kept'
{{ rows_by_day("obs_date") }}
