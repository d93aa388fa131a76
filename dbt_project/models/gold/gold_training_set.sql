{{ partitioned_config("flight_date") }}
{{ config(alias="training_set") }}
{#- Features plus the label, for flights whose label is known (docs/design.md#features):
    cancelled and diverted flights have no arr_delay and are scored but never trained on. -#}

select
    f.* except (load_id, computed_at),
    {{ is_delayed("s.arr_delay") }} as is_delayed,
    '{{ run_var("load_id") }}' as load_id,
    now() as computed_at
from {{ ref("gold_flight_features") }} f
join {{ ref("silver_flights") }} s using (flight_id)
where {{ in_window("f.flight_date") }}
  and {{ in_window("s.flight_date") }}
  and s.arr_delay is not null
{{ rows_by_day("flight_date") }}
