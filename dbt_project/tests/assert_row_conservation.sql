{{ config(meta={"dagster": {"ref": {"name": "silver_load_audit"}}}) }}
{#- Row conservation per partition (docs/design.md#layers): bronze rows = silver rows +
    quarantined rows + duplicates dropped, counted from the tables themselves, not from the audit's
    own bookkeeping. Only the run's own window: another run may have landed bronze for its days and
    not yet built their silver. -#}
with bronze as (
    select landing_date, 'flights' as dataset, count(*) as n from {{ ref("bronze_flights") }} group by all
    union all
    select landing_date, 'weather', count(*) from {{ ref("bronze_weather") }} group by all
),
silver as (
    select flight_date as landing_date, 'flights' as dataset, count(*) as n from {{ ref("silver_flights") }} group by all
    union all
    select obs_date, 'weather', count(*) from {{ ref("silver_weather") }} group by all
),
quarantined as (
    select landing_date, dataset, count(*) as n from {{ ref("silver_quarantine") }}
    where action = 'row_quarantined' group by all
)
select b.landing_date, b.dataset, b.n as bronze_rows, s.n as silver_rows, q.n as quarantined_rows,
       a.duplicates_dropped
from bronze b
left join silver s using (landing_date, dataset)
left join quarantined q using (landing_date, dataset)
left join {{ ref("silver_load_audit") }} a using (landing_date, dataset)
where {{ in_window("b.landing_date") }}
  and (b.n <> coalesce(s.n, 0) + coalesce(q.n, 0) + coalesce(a.duplicates_dropped, 0)
       or a.bronze_rows is distinct from b.n)
