{{ config(materialized="table", alias="airlines") }}
-- depends_on: {{ source("landing", "airlines") }}
{{ bronze_from_landing("airlines", partitioned=false) }}
