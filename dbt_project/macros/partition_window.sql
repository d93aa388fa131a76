{#- Partitioned models rewrite exactly their window [min_date, max_date), and a re-run, or a range
    run instead of day by day, gives the same table. On DuckDB the pre-hook deletes the window, the
    model's select returns only rows inside it, and the append puts them back, all in one
    transaction. On Spark the table is Parquet partitioned by the day column: the pre-hook drops the
    window's partitions (a day that now has no rows keeps none of its old ones) and insert_overwrite
    writes the days the select returns, each partition replaced whole. -#}

{% macro window_start() %}cast('{{ run_var("min_date") }}' as date){% endmacro %}
{% macro window_end() %}cast('{{ run_var("max_date") }}' as date){% endmacro %}

{% macro in_window(column, lookback_days=0) -%}
    ({{ column }} >= {{ window_start() }} - interval {{ lookback_days | int }} day and {{ column }} < {{ window_end() }})
{%- endmacro %}

{% macro delete_window(column) %}{{ return(adapter.dispatch("delete_window", "tarmac")(column)) }}{% endmacro %}

{% macro default__delete_window(column) %}
    {% if is_incremental() %}
        delete from {{ this }} where {{ in_window(column) }}
    {% endif %}
{% endmacro %}

{% macro spark__delete_window(column) %}
    {% if is_incremental() %}
        {%- set first = modules.datetime.date.fromisoformat(run_var("min_date")) -%}
        {%- set days = (modules.datetime.date.fromisoformat(run_var("max_date")) - first).days -%}
        alter table {{ this }} drop if exists
        {%- for offset in range(days) %}
            partition ({{ column }} = '{{ first + modules.datetime.timedelta(days=offset) }}'){% if not loop.last %},{% endif %}
        {%- endfor %}
    {% endif %}
{% endmacro %}

{% macro partitioned_config(partition_column) %}
    {{ adapter.dispatch("partitioned_config", "tarmac")(partition_column) }}
{% endmacro %}

{% macro default__partitioned_config(partition_column) %}
    {{ config(
        materialized="incremental",
        incremental_strategy="append",
        on_schema_change="fail",
        pre_hook=["{{ delete_window('" ~ partition_column ~ "') }}"],
        tags=["partitioned"],
        meta={"partition_column": partition_column},
    ) }}
{% endmacro %}

{% macro spark__partitioned_config(partition_column) %}
    {{ config(
        materialized="incremental",
        incremental_strategy="insert_overwrite",
        file_format="parquet",
        partition_by=[partition_column],
        on_schema_change="fail",
        pre_hook=["{{ delete_window('" ~ partition_column ~ "') }}"],
        tags=["partitioned"],
        meta={"partition_column": partition_column},
    ) }}
{% endmacro %}

{#- The last clause of a partitioned model's select. On Spark, the rows of a day in one task, so
    that each day's partition is one Parquet file rather than one per task that held some of its
    rows (readers list and open every file). Nothing on DuckDB. -#}
{% macro rows_by_day(column) %}{{ return(adapter.dispatch("rows_by_day", "tarmac")(column)) }}{% endmacro %}
{% macro default__rows_by_day(column) %}{% endmacro %}
{% macro spark__rows_by_day(column) %}distribute by {{ column }}{% endmacro %}
