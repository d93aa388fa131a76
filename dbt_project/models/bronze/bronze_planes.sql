{{ config(materialized="table", alias="planes") }}
-- depends_on: {{ source("landing", "planes") }}
{{ bronze_from_landing("planes", partitioned=false) }}
