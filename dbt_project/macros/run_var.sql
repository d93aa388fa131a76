{#- A value that changes with every run: the partition window (min_date, max_date) and the load id.
    Dagster passes it as the environment variable TARMAC_RUN_<NAME>, read only while dbt executes.
    Passed with --vars instead, a new value would make dbt parse the whole project again on every
    invocation (a changed --vars voids the partial parse, about 2 s each); an environment variable
    that parsing never reads does not. dbt run by hand gets the project var. -#}
{% macro run_var(name) -%}
    {%- if execute -%}
        {{- return(env_var("TARMAC_RUN_" ~ name | upper, var(name))) -}}
    {%- else -%}
        {{- return(var(name)) -}}
    {%- endif -%}
{%- endmacro %}
