{{ partitioned_config("landing_date") }}
{{ config(alias="flights") }}
-- depends_on: {{ source("landing", "flights") }}
{{ bronze_from_landing("flights") }}
{{ rows_by_day("landing_date") }}
