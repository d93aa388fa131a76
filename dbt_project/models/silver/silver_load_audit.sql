{{ partitioned_config("landing_date") }}
{{ config(alias="load_audit") }}
{#- Row conservation per partition and dataset (docs/design.md#layers):
    bronze_rows = silver_rows + quarantined_rows + duplicates_dropped. -#}

{% for dataset in ["flights", "weather"] %}
select
    b.landing_date,
    '{{ dataset }}' as dataset,
    b.bronze_rows,
    coalesce(c.silver_rows, 0) as silver_rows,
    coalesce(c.quarantined_rows, 0) as quarantined_rows,
    coalesce(c.duplicates_dropped, 0) as duplicates_dropped,
    cast(coalesce(c.values_nulled, 0) as bigint) as values_nulled,
    now() as audited_at
from (
    select landing_date, count(*) as bronze_rows
    from {{ ref("bronze_" ~ dataset) }}
    where {{ in_window("landing_date") }}
    group by all
) b
left join (
    select
        landing_date,
        count(*) filter (where disposition = 'kept') as silver_rows,
        count(*) filter (where disposition = 'quarantined') as quarantined_rows,
        count(*) filter (where disposition = 'duplicate_dropped') as duplicates_dropped,
        sum({{ list_len('nulled') }}) filter (where disposition = 'kept') as values_nulled
    from {{ ref("silver_" ~ dataset ~ "_checked") }}
    group by all
) c using (landing_date)
{% if not loop.last %}union all{% endif %}
{% endfor %}
{{ rows_by_day("landing_date") }}
