{#- The label (docs/design.md#features): a flight is delayed when it arrives 15 minutes late or
    more; NULL (never trained on) when arr_delay is unknown, as for cancelled and diverted flights. -#}
{% macro is_delayed(arr_delay) -%}
    {{ arr_delay }} >= 15
{%- endmacro %}
