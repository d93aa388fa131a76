{{ partitioned_config("landing_date") }}
{{ config(alias="rejected_files") }}
-- depends_on: {{ source("landing", "flights") }}
-- depends_on: {{ source("landing", "weather") }}
{#- Daily landing files that could not be read at all, one row each: nothing of them reached
    bronze.flights or bronze.weather, and their day's checks fail until upstream delivers a file
    that can be read (the landing sensor picks it up by its new checksum). -#}

{% for dataset in ["flights", "weather"] %}
select
    landing_date,
    dataset,
    source_file,
    file_checksum,
    size_bytes,
    rejection_reason as reason,
    encoding_error_line as line_number,
    encoding_error_byte_offset as byte_offset,
    '{{ run_var("load_id") }}' as load_id,
    now() as rejected_at
from ({{ checked_landing_files(dataset) }})
where rejection_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
{{ rows_by_day("landing_date") }}
