{{ config(materialized="table", alias="airports") }}
-- depends_on: {{ source("landing", "airports") }}
{{ bronze_from_landing("airports", partitioned=false) }}
