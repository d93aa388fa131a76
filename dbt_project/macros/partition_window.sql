{#- Partitioned models rewrite exactly their window [min_date, max_date): the pre-hook deletes
    the window, the model's select returns only rows inside it, and the append puts them back,
    all in one transaction. A re-run, or a range run instead of day by day, gives the same table. -#}

{% macro window_start() %}'{{ run_var("min_date") }}'::date{% endmacro %}
{% macro window_end() %}'{{ run_var("max_date") }}'::date{% endmacro %}

{% macro in_window(column, lookback_days=0) -%}
    ({{ column }} >= {{ window_start() }} - interval {{ lookback_days | int }} day and {{ column }} < {{ window_end() }})
{%- endmacro %}

{% macro delete_window(column) %}
    {% if is_incremental() %}
        delete from {{ this }} where {{ in_window(column) }}
    {% endif %}
{% endmacro %}

{% macro partitioned_config(partition_column) %}
    {{ config(
        materialized="incremental",
        incremental_strategy="append",
        on_schema_change="fail",
        pre_hook=["{{ delete_window('" ~ partition_column ~ "') }}"],
        tags=["partitioned"],
        meta={"partition_column": partition_column},
    ) }}
{% endmacro %}
