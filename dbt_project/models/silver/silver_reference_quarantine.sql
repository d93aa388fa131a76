{{ config(materialized="table", alias="reference_quarantine") }}
{#- Reference rows that silver could not keep: malformed lines, a missing key, a repeated key. -#}

{% for dataset, key in [("planes", "tailnum"), ("airports", "faa"), ("airlines", "carrier")] %}
select
    '{{ dataset }}' as dataset,
    case
        when parse_error is not null then 'malformed_line'
        when {{ na(key) }} is null then 'missing_required_value'
        else 'duplicate_key'
    end as rule,
    case
        when parse_error is not null then parse_error
        when {{ na(key) }} is null then 'required column {{ key }} is empty'
        else {{ fmt(key ~ " {} already delivered at line {}", [key, "min(source_line_number) over (partition by " ~ key ~ ")"]) }}
    end as reason,
    source_file,
    source_line_number,
    file_checksum,
    raw_line as raw_payload,
    load_id
from {{ ref("bronze_" ~ dataset) }}
qualify parse_error is not null or {{ na(key) }} is null
    or row_number() over (partition by {{ key }} order by source_line_number) > 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
