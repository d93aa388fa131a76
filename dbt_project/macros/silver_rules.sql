{#- One mechanism conforms every landed dataset: cast each raw text column, collect every rule a
    row breaks (the row is quarantined) and every impossible value (the value is nulled, the row
    kept), and rank rows that share a natural key. Models add their own rules and derived columns. -#}

{% macro na(expr) -%}
    nullif(nullif(trim({{ expr }}), ''), 'NA')
{%- endmacro %}

{% macro violation(rule, condition, reason) -%}
    case when {{ condition }} then {{ struct_of([("rule", "'" ~ rule ~ "'"), ("reason", reason)]) }} end
{%- endmacro %}

{% macro nulled_value(column, condition, reason) -%}
    case when {{ condition }} then {{ struct_of([("column_name", "'" ~ column ~ "'"),
        ("original_value", "cast(" ~ column ~ " as " ~ sql_type("varchar") ~ ")"), ("reason", reason)]) }} end
{%- endmacro %}

{% macro local_date_rules(timezone) -%}
    {#- The day and hour columns are local; the file is the local day; time_hour is UTC. -#}
    {{ violation("date_outside_file",
        "year is not null and month is not null and day is not null
         and try_cast(" ~ printf('%04d-%02d-%02d', ['year', 'month', 'day']) ~ " as date) is distinct from landing_date",
        fmt('local date {}-{}-{} is not the day of file {} ({})', ['year', 'month', 'day', 'source_file', 'landing_date'])) }},
    {{ violation("time_hour_mismatch",
        "time_hour is not null and hour is not null
         and " ~ local_timestamp(timezone, 'time_hour') ~ " is distinct from
             try_cast(" ~ printf('%04d-%02d-%02d %02d:00:00', ['year', 'month', 'day', 'hour']) ~ " as timestamp)",
        fmt('time_hour {} is {} in ' ~ timezone ~ ', not the local hour {} of {}-{}-{}',
            ['raw.time_hour', timestamp_text(local_timestamp(timezone, 'time_hour'), with_offset=false),
             'hour', 'year', 'month', 'day'])) }},
    {{ violation("unknown_origin",
        "origin is not null and origin not in (" ~ var("nyc_origins") | map("tojson") | join(", ") | replace('"', "'") ~ ")",
        fmt('origin {} is not one of the New York origins', ['origin'])) }}
{%- endmacro %}

{% macro checked_landing_rows(bronze_model, types, required, bounds, extra_rules=[], extra_nulls=[]) %}
bronze as (
    select * from {{ ref(bronze_model) }} where {{ in_window("landing_date") }}
),

typed as (
    select
        {%- for column, type in types.items() %}
        try_cast({{ na("b." ~ column) }} as {{ sql_type(type) }}) as {{ column }},
        {%- endfor %}
        b.landing_date, b.parse_error, b.raw_line, b.source_file, b.file_checksum,
        b.source_line_number, b.load_id, b.ingested_at,
        {{ row_struct("b") }} as raw
    from bronze b
),

ruled as (
    select
        *,
        {%- set violations = [violation("malformed_line", "parse_error is not null", fmt("{}: {}", ["parse_error", "raw_line"]))] %}
        {%- for column in required %}
        {%- do violations.append(violation("missing_required_value", "parse_error is null and " ~ na("raw." ~ column) ~ " is null",
                                           "'required column " ~ column ~ " is empty'")) %}
        {%- endfor %}
        {%- for column, type in types.items() %}
        {%- do violations.append(violation("invalid_type", na("raw." ~ column) ~ " is not null and " ~ column ~ " is null",
                                           fmt("column " ~ column ~ ": ''{}'' is not a valid " ~ type, ["raw." ~ column]))) %}
        {%- endfor %}
        {%- set nulled = [] %}
        {%- for column, bound in bounds.items() %}
        {%- do nulled.append(nulled_value(column, column ~ " not between " ~ bound[0] ~ " and " ~ bound[1],
                                          "'" ~ column ~ " outside the possible range [" ~ bound[0] ~ ", " ~ bound[1] ~ "]'")) %}
        {%- endfor %}
        {{ list_filter(list_of(violations + extra_rules), "v", "v is not null") }} as violations,
        {{ list_filter(list_of(nulled + extra_nulls), "v", "v is not null") }} as nulled
    from typed
)
{% endmacro %}

{% macro within_bounds(column, bound) -%}
    case when {{ column }} between {{ bound[0] }} and {{ bound[1] }} then {{ column }} end
{%- endmacro %}

{% macro disposition(key_expression) -%}
    {#- kept: the first valid row of its key; duplicate_dropped: a byte-identical copy of it;
        quarantined: broke a rule, or shares the key with different content. -#}
    case
        when {{ list_len('violations') }} > 0 then 'quarantined'
        when row_number() over key_rows = 1 then 'kept'
        when raw_line = first_value(raw_line) over key_rows then 'duplicate_dropped'
        else 'quarantined'
    end
{%- endmacro %}

{% macro key_window(key_expression) -%}
    window key_rows as (
        partition by {{ list_len('violations') }} > 0, {{ key_expression }}
        order by source_file, source_line_number
    )
{%- endmacro %}

{% macro valid_hhmm(column) -%}
    ({{ column }} between 0 and 2400 and {{ column }} % 100 < 60)
{%- endmacro %}

{% macro hhmm_to_minutes(column) -%}
    {#- Local HHMM to minutes after midnight; 2400 is the end of the day (1440), not 00:00. -#}
    case when {{ valid_hhmm(column) }} then cast({{ int_div(column, 100) }} * 60 + {{ column }} % 100 as integer) end
{%- endmacro %}
