{{ config(materialized="table", alias="planes") }}

select
    tailnum,
    try_cast({{ na("year") }} as integer) as year,
    {{ na("type") }} as type,
    {{ na("manufacturer") }} as manufacturer,
    {{ na("model") }} as model,
    try_cast({{ na("engines") }} as integer) as engines,
    try_cast({{ na("seats") }} as integer) as seats,
    try_cast({{ na("speed") }} as integer) as speed,
    {{ na("engine") }} as engine,
    source_file,
    source_line_number,
    file_checksum,
    load_id
from {{ ref("bronze_planes") }}
where parse_error is null and {{ na("tailnum") }} is not null
qualify row_number() over (partition by tailnum order by source_line_number) = 1
