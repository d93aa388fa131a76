{{ config(meta={"dagster": {"ref": {"name": "silver_flights"}}}) }}
{{ row_conservation("flights", "flight_date") }}
