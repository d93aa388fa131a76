{{ config(materialized="table", alias="airports") }}

select
    faa,
    name,
    try_cast({{ na("lat") }} as double) as lat,
    try_cast({{ na("lon") }} as double) as lon,
    try_cast({{ na("alt") }} as integer) as alt_ft,
    try_cast({{ na("tz") }} as integer) as utc_offset_hours,
    {{ na("dst") }} as dst,
    {{ na("tzone") }} as tzone,
    source_file,
    source_line_number,
    file_checksum,
    load_id
from {{ ref("bronze_airports") }}
where parse_error is null and {{ na("faa") }} is not null
qualify row_number() over (partition by faa order by source_line_number) = 1
