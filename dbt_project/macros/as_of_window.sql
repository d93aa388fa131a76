{#- Rolling aggregates over the window (p - width, p] of each target flight's prediction time p: one
    row per target, flight_id and the aggregates. Expects a `targets` relation with flight_id,
    prediction_ts and the key columns.
    values: the select items over the events that the aggregates read ("expression as name", or a
        column name).
    aggregates: [{name, function: count | avg, value: a value's name}], in the output's order: a count
        counts the non-NULL values, an avg is their mean (NULL if none).
    Unlike dialect.sql, `default__` here is the portable SQL (a RANGE frame, which Spark runs) and
    `duckdb__` the faster method that needs an ASOF join; both give the same numbers, cell by cell. -#}
{% macro as_of_window(events, keys, values, width, aggregates) %}{{ return(adapter.dispatch("as_of_window", "tarmac")(events, keys, values, width, aggregates)) }}{% endmacro %}

{#- The event stream merged with the targets as query rows (NULL values, so aggregates ignore them)
    and a RANGE frame of (width - 1 microsecond) PRECEDING .. CURRENT ROW: the left edge open, the
    right edge closed (timestamps are whole microseconds), an event at exactly p counted. One sort
    per stream instead of a range join: the cost grows as n log n, not n x m. Both selects list the
    same columns in the same order (a union by position, as Spark has no other). -#}
{% macro default__as_of_window(events, keys, values, width, aggregates) %}
    {%- set value_names = [] -%}
    {%- for v in values %}{% do value_names.append(v.split(" as ")[-1]) %}{% endfor -%}
    select flight_id, {% for agg in aggregates %}{{ agg.function }}({{ agg.value }}) over w as {{ agg.name }}{% if not loop.last %}, {% endif %}{% endfor %}
    from (
        select {{ keys | join(", ") }}, event_ts as ts, {{ values | join(", ") }}, cast(null as {{ sql_type("varchar") }}) as flight_id
        from {{ events }}
        union all
        select {{ keys | join(", ") }}, prediction_ts as ts,
            {% for name in value_names %}null as {{ name }}, {% endfor %}flight_id
        from targets
    ) stream
    window w as (
        partition by {{ keys | join(", ") }}
        order by ts
        range between {{ open_range_start(width) }} and current row
    )
    qualify flight_id is not null
{% endmacro %}

{#- The same numbers as differences of running totals, at about half the CPU time of the RANGE frame
    on large inputs: the targets are not sorted into the events, nor a frame aggregated per target. Per
    key, the running count (and, for an avg, sum) of each value at every distinct event time; each
    target takes the totals of the latest event time at or before p minus those of the latest at or
    before p - width, each found by an ASOF join. What is at or before p minus what is at or before
    p - width is (p - width, p]: an event at exactly p counts, one at exactly p - width does not.
    - An empty window: no totals found count as 0, so a count is 0 and an avg, with no values to
      divide by, NULL, as the RANGE frame gives over target rows only.
    - NULLs: a value's count is count(value), so an avg skips NULL values as avg does; keys match
      with IS NOT DISTINCT FROM, as PARTITION BY puts NULL keys together.
    - Exactness: the values summed are whole numbers (minutes of delay; 0/1 for a rate), so running
      sums and their differences are exact in doubles, and an avg is the double division avg does
      (sum / count). A mean of fractional values would differ from avg in the last bits.
    - Time: both edges are `p - interval`, timestamptz arithmetic as in the RANGE frame (UTC sessions). -#}
{% macro duckdb__as_of_window(events, keys, values, width, aggregates) %}
    {%- set value_names = [] -%}
    {%- for v in values %}{% do value_names.append(v.split(" as ")[-1]) %}{% endfor -%}
    {%- set summed = [] -%}
    {%- for agg in aggregates if agg.function == "avg" and agg.value not in summed %}{% do summed.append(agg.value) %}{% endfor -%}
    {#- One row per key and distinct event time, so the row an ASOF join finds holds every event of
        that instant. A sum of counts is a HUGEINT: cast back to count's BIGINT. -#}
    with totals as (
        select {{ keys | join(", ") }}, ts
            {%- for name in value_names %},
            cast(sum(count({{ name }})) over running as bigint) as n_{{ name }}
            {%- if name in summed %},
            sum(sum({{ name }})) over running as s_{{ name }}
            {%- endif %}
            {%- endfor %}
        from (
            select {{ keys | join(", ") }}, event_ts as ts, {{ values | join(", ") }}
            from {{ events }}
        ) stream
        group by {{ keys | join(", ") }}, ts
        window running as (
            partition by {{ keys | join(", ") }}
            order by ts
            rows between unbounded preceding and current row
        )
    )
    select
        t.flight_id
        {%- for agg in aggregates %},
        {%- set n = "(coalesce(upto_p.n_" ~ agg.value ~ ", 0) - coalesce(upto_start.n_" ~ agg.value ~ ", 0))" %}
        {%- if agg.function == "count" %}
        {{ n }} as {{ agg.name }}
        {%- else %}
        case when {{ n }} > 0
            then (upto_p.s_{{ agg.value }} - coalesce(upto_start.s_{{ agg.value }}, 0)) / {{ n }} end as {{ agg.name }}
        {%- endif %}
        {%- endfor %}
    from targets t
    asof left join totals upto_p
        on {% for key in keys %}t.{{ key }} is not distinct from upto_p.{{ key }} and {% endfor -%}
        t.prediction_ts >= upto_p.ts
    asof left join totals upto_start
        on {% for key in keys %}t.{{ key }} is not distinct from upto_start.{{ key }} and {% endfor -%}
        t.prediction_ts - interval {{ width }} >= upto_start.ts
{% endmacro %}
