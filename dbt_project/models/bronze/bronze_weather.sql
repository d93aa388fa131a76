{{ partitioned_config("landing_date") }}
{{ config(alias="weather") }}
-- depends_on: {{ source("landing", "weather") }}
{{ bronze_from_landing("weather") }}
{{ rows_by_day("landing_date") }}
