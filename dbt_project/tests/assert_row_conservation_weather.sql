{{ config(meta={"dagster": {"ref": {"name": "silver_weather"}}}) }}
{{ row_conservation("weather", "obs_date") }}
