{{ partitioned_config("landing_date") }}
{{ config(alias="quarantine") }}
{#- Rows that broke a rule (action row_quarantined: the row is not in silver) and impossible values
    nulled inside kept rows (action value_nulled), each with the raw payload to replay it from. -#}

{% for dataset in ["flights", "weather"] %}
select
    landing_date,
    '{{ dataset }}' as dataset,
    'row_quarantined' as action,
    {{ list_at("violations", 1) }}.rule as rule,
    {{ list_join(list_transform("violations", "v", "v.reason"), "'; '") }} as reason,
    cast(null as {{ sql_type("varchar") }}) as column_name,
    cast(null as {{ sql_type("varchar") }}) as original_value,
    source_file,
    source_line_number,
    file_checksum,
    raw_line as raw_payload,
    load_id,
    now() as quarantined_at
from {{ ref("silver_" ~ dataset ~ "_checked") }}
where disposition = 'quarantined'

union all

select
    landing_date,
    '{{ dataset }}' as dataset,
    'value_nulled' as action,
    'impossible_value' as rule,
    n.reason,
    n.column_name,
    n.original_value,
    source_file,
    source_line_number,
    file_checksum,
    raw_line as raw_payload,
    load_id,
    now() as quarantined_at
{{ from_unnested(ref("silver_" ~ dataset ~ "_checked"), "nulled", "u", "n") }}
where disposition = 'kept'
{% if not loop.last %}union all{% endif %}
{% endfor %}
{{ rows_by_day("landing_date") }}
