{{ config(materialized="table", alias="airlines") }}

select
    carrier,
    name,
    source_file,
    source_line_number,
    file_checksum,
    load_id
from {{ ref("bronze_airlines") }}
where parse_error is null and {{ na("carrier") }} is not null
qualify row_number() over (partition by carrier order by source_line_number) = 1
