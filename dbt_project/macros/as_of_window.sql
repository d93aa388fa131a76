{#- Rolling aggregates over the window (p - width, p] of each target flight's prediction time p.
    The event stream is merged with the targets as query rows (NULL values, so aggregates ignore
    them) and a RANGE frame of (width - 1 microsecond) PRECEDING .. CURRENT ROW makes the left edge
    open and the right edge closed: event times are whole minutes, and an event at exactly p counts.
    One sort per stream instead of a range join: the cost grows as n log n, not n x m. Both
    selects list the same columns in the same order (a union by position, as Spark has no other).
    Expects a `targets` relation with flight_id, prediction_ts and the key columns. -#}
{% macro as_of_window(events, keys, values, width, aggregates) %}
    {%- set value_names = [] -%}
    {%- for v in values %}{% do value_names.append(v.split(" as ")[-1]) %}{% endfor -%}
    select flight_id, {{ aggregates }}
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
