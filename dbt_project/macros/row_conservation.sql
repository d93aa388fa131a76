{#- Row conservation of one dataset per partition (docs/design.md#layers): bronze rows = silver rows
    + quarantined rows + duplicates dropped, counted from the tables themselves, not from the
    audit's own bookkeeping. Only the run's own window: another run may have landed bronze for its
    days and not yet built their silver. One test per dataset, attached to that dataset's silver
    table, so a run that rebuilds one side of a day (a corrected flights file) runs that side's. -#}
{% macro row_conservation(dataset, day_column) %}
with bronze as (
    select landing_date, count(*) as n from {{ ref("bronze_" ~ dataset) }} group by all
),
silver as (
    select {{ day_column }} as landing_date, count(*) as n from {{ ref("silver_" ~ dataset) }} group by all
),
quarantined as (
    select landing_date, count(*) as n from {{ ref("silver_quarantine") }}
    where action = 'row_quarantined' and dataset = '{{ dataset }}' group by all
),
audit as (
    select * from {{ ref("silver_load_audit") }} where dataset = '{{ dataset }}'
)
select b.landing_date, '{{ dataset }}' as dataset, b.n as bronze_rows, s.n as silver_rows,
       q.n as quarantined_rows, a.duplicates_dropped
from bronze b
left join silver s using (landing_date)
left join quarantined q using (landing_date)
left join audit a using (landing_date)
where {{ in_window("b.landing_date") }}
  and (b.n <> coalesce(s.n, 0) + coalesce(q.n, 0) + coalesce(a.duplicates_dropped, 0)
       or a.bronze_rows is distinct from b.n)
{% endmacro %}
