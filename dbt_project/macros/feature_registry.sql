{#- The feature registry as the batch SQL reads it: the meta.feature blocks of gold_flight_features'
    columns (dbt_project/models/gold/_gold.yml), the definitions the speed layer reads too.
    Empty while dbt parses (execute is false): the SQL is only rendered for real at run time. -#}
{% macro registry_features() %}
    {%- set features = [] -%}
    {%- if execute -%}
        {%- for column in graph.nodes["model.tarmac.gold_flight_features"].columns.values() -%}
            {%- if column.meta.get("feature") -%}
                {%- set feature = {"name": column.name} -%}
                {%- do feature.update(column.meta.feature) -%}
                {%- do features.append(feature) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{% endmacro %}

{% macro registry_vocabulary() %}
    {{ return(graph.nodes["model.tarmac.gold_flight_features"].config.meta if execute else {}) }}
{% endmacro %}

{#- A registry window (30m, 1h, 7d) as an interval's amount and unit: "1 hour". -#}
{% macro registry_interval(window) -%}
    {{ window[:-1] }} {{ {"m": "minute", "h": "hour", "d": "day"}[window[-1]] }}
{%- endmacro %}

{#- The rolling-window features (mean, count, rate), grouped by (source, entity, window): features
    of a group share one as_of_window pass. A group: {source, keys, window, features}. -#}
{% macro registry_window_groups() %}
    {%- set groups = [] -%}
    {%- set entities = registry_vocabulary().get("feature_entities", {}) -%}
    {%- for feature in registry_features() if feature.aggregation in ("mean", "count", "rate") -%}
        {%- set found = [] -%}
        {%- for group in groups if group.source == feature.source and group.entity == feature.entity
                and group.window == feature.window -%}
            {%- do found.append(group) -%}
        {%- endfor -%}
        {%- if found -%}
            {%- do found[0].features.append(feature) -%}
        {%- else -%}
            {%- do groups.append({"source": feature.source, "entity": feature.entity, "window": feature.window,
                                  "keys": entities[feature.entity], "features": [feature]}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(groups) }}
{% endmacro %}

{#- One group's window pass over its source's events (a CTE of that name): a mean averages the
    value, a rate averages (value >= rate_threshold), a count counts events. -#}
{% macro registry_window(group) %}
    {%- set threshold = registry_vocabulary().rate_threshold -%}
    {%- set values, aggregates = [], [] -%}
    {%- for feature in group.features -%}
        {%- if feature.aggregation == "count" -%}
            {%- set value, name = "1 as is_event", "is_event" -%}
            {%- do aggregates.append({"name": feature.name, "function": "count", "value": name}) -%}
        {%- elif feature.aggregation == "rate" -%}
            {%- set name = feature.value ~ "_at_threshold" -%}
            {%- set value = "cast(" ~ feature.value ~ " >= " ~ threshold ~ " as double) as " ~ name -%}
            {%- do aggregates.append({"name": feature.name, "function": "avg", "value": name}) -%}
        {%- else -%}
            {%- set value, name = feature.value, feature.value -%}
            {%- do aggregates.append({"name": feature.name, "function": "avg", "value": name}) -%}
        {%- endif -%}
        {%- if value not in values -%}{%- do values.append(value) -%}{%- endif -%}
    {%- endfor -%}
    {{ as_of_window(group.source, group["keys"], values, registry_interval(group.window), aggregates) }}
{% endmacro %}
