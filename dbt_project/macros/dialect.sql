{#- The SQL that DuckDB and Spark spell differently, one macro each: `default__` is DuckDB's
    spelling (the default engine), `spark__` Spark SQL's. The models call these and are the same
    for both engines. Both engines run with UTC sessions, and Spark reads string literals as DuckDB
    does (spark.sql.parser.escapedStringLiterals: a backslash is a character). -#}

{#- format('... {} ...', a, b): the message templates use {} for every argument. -#}
{% macro fmt(template, args) %}{{ return(adapter.dispatch("fmt", "tarmac")(template, args)) }}{% endmacro %}
{% macro default__fmt(template, args) -%}
    format('{{ template }}', {{ args | join(", ") }})
{%- endmacro %}
{% macro spark__fmt(template, args) -%}
    {#- %s renders a date as DuckDB does; a NULL as "null" where DuckDB writes "NULL" (never in these
        messages). A quote doubled in the template is chr(39): Spark reads literals without escapes. -#}
    {%- set pieces = template.replace("{}", "%s").split("''") -%}
    format_string({% if pieces | length > 1 %}concat({% for piece in pieces %}'{{ piece }}'{% if not loop.last %}, chr(39), {% endif %}{% endfor %}){% else %}'{{ pieces[0] }}'{% endif %}, {{ args | join(", ") }})
{%- endmacro %}

{#- A timestamp as text, as DuckDB's format('{}') writes it in a UTC session: with an offset for a
    TIMESTAMP WITH TIME ZONE ("2013-01-01 05:00:00+00"), without one for a local TIMESTAMP. -#}
{% macro timestamp_text(ts, with_offset=true) %}{{ return(adapter.dispatch("timestamp_text", "tarmac")(ts, with_offset)) }}{% endmacro %}
{% macro default__timestamp_text(ts, with_offset) -%}{{ ts }}{%- endmacro %}
{% macro spark__timestamp_text(ts, with_offset) -%}
    date_format({{ ts }}, 'yyyy-MM-dd HH:mm:ss{{ "+00" if with_offset }}')
{%- endmacro %}

{#- printf-style formatting (%d, %02d, %s). -#}
{% macro printf(template, args) %}{{ return(adapter.dispatch("printf", "tarmac")(template, args)) }}{% endmacro %}
{% macro default__printf(template, args) -%}printf('{{ template }}', {{ args | join(", ") }}){%- endmacro %}
{% macro spark__printf(template, args) -%}format_string('{{ template }}', {{ args | join(", ") }}){%- endmacro %}

{#- The SQL type of a landed column: the type names of the silver rules. -#}
{% macro sql_type(name) %}{{ return(adapter.dispatch("sql_type", "tarmac")(name)) }}{% endmacro %}
{% macro default__sql_type(name) -%}{{ name }}{%- endmacro %}
{% macro spark__sql_type(name) -%}
    {{ {"varchar": "string", "timestamptz": "timestamp", "blob": "binary"}.get(name, name) }}
{%- endmacro %}

{#- Lists. Positions are 1-based on both engines; a negative one counts from the end. -#}
{% macro list_of(items) %}{{ return(adapter.dispatch("list_of", "tarmac")(items)) }}{% endmacro %}
{% macro default__list_of(items) -%}[{{ items | join(", ") }}]{%- endmacro %}
{% macro spark__list_of(items) -%}array({{ items | join(", ") }}){%- endmacro %}

{% macro list_len(list) %}{{ return(adapter.dispatch("list_len", "tarmac")(list)) }}{% endmacro %}
{% macro default__list_len(list) -%}len({{ list }}){%- endmacro %}
{% macro spark__list_len(list) -%}size({{ list }}){%- endmacro %}

{% macro list_at(list, position) %}{{ return(adapter.dispatch("list_at", "tarmac")(list, position)) }}{% endmacro %}
{% macro default__list_at(list, position) -%}{{ list }}[{{ position }}]{%- endmacro %}
{% macro spark__list_at(list, position) -%}element_at({{ list }}, {{ position }}){%- endmacro %}

{#- list_filter(list, "v", "v is not null"): the elements for which the expression of v holds. -#}
{% macro list_filter(list, var, condition) %}{{ return(adapter.dispatch("list_filter", "tarmac")(list, var, condition)) }}{% endmacro %}
{% macro default__list_filter(list, var, condition) -%}list_filter({{ list }}, lambda {{ var }}: {{ condition }}){%- endmacro %}
{% macro spark__list_filter(list, var, condition) -%}filter({{ list }}, {{ var }} -> {{ condition }}){%- endmacro %}

{% macro list_transform(list, var, expression) %}{{ return(adapter.dispatch("list_transform", "tarmac")(list, var, expression)) }}{% endmacro %}
{% macro default__list_transform(list, var, expression) -%}list_transform({{ list }}, lambda {{ var }}: {{ expression }}){%- endmacro %}
{% macro spark__list_transform(list, var, expression) -%}transform({{ list }}, {{ var }} -> {{ expression }}){%- endmacro %}

{% macro list_join(list, separator) %}{{ return(adapter.dispatch("list_join", "tarmac")(list, separator)) }}{% endmacro %}
{% macro default__list_join(list, separator) -%}array_to_string({{ list }}, {{ separator }}){%- endmacro %}
{% macro spark__list_join(list, separator) -%}array_join({{ list }}, {{ separator }}){%- endmacro %}

{#- A list as DuckDB's format('{}') writes it: [a, b]. -#}
{% macro list_text(list) -%}('[' || {{ list_join(list, "', '") }} || ']'){%- endmacro %}

{#- A string split at a one-character separator, keeping empty pieces. -#}
{% macro split_text(text, separator) %}{{ return(adapter.dispatch("split_text", "tarmac")(text, separator)) }}{% endmacro %}
{% macro default__split_text(text, separator) -%}string_split({{ text }}, {{ separator }}){%- endmacro %}
{% macro spark__split_text(text, separator) -%}split({{ text }}, {{ separator }}, -1){%- endmacro %}

{#- A struct from an ordered list of (name, expression) pairs. -#}
{% macro struct_of(fields) %}{{ return(adapter.dispatch("struct_of", "tarmac")(fields)) }}{% endmacro %}
{% macro default__struct_of(fields) -%}
    {{ "{" }}{% for name, value in fields %}'{{ name }}': {{ value }}{% if not loop.last %}, {% endif %}{% endfor %}{{ "}" }}
{%- endmacro %}
{% macro spark__struct_of(fields) -%}
    named_struct({% for name, value in fields %}'{{ name }}', {{ value }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- A whole row of a relation as one struct value (its columns by name). -#}
{% macro row_struct(alias) %}{{ return(adapter.dispatch("row_struct", "tarmac")(alias)) }}{% endmacro %}
{% macro default__row_struct(alias) -%}{{ alias }}{%- endmacro %}
{% macro spark__row_struct(alias) -%}struct({{ alias }}.*){%- endmacro %}

{#- `from relation` with one row per element of a list column of it, as `alias.column`. -#}
{% macro from_unnested(relation, list, alias, column) %}{{ return(adapter.dispatch("from_unnested", "tarmac")(relation, list, alias, column)) }}{% endmacro %}
{% macro default__from_unnested(relation, list, alias, column) -%}
    from {{ relation }}, unnest({{ list }}) as {{ alias }}({{ column }})
{%- endmacro %}
{% macro spark__from_unnested(relation, list, alias, column) -%}
    from {{ relation }} lateral view explode({{ list }}) {{ alias }} as {{ column }}
{%- endmacro %}

{#- Time. -#}
{% macro local_timestamp(timezone, ts) %}{{ return(adapter.dispatch("local_timestamp", "tarmac")(timezone, ts)) }}{% endmacro %}
{% macro default__local_timestamp(timezone, ts) -%}timezone('{{ timezone }}', {{ ts }}){%- endmacro %}
{% macro spark__local_timestamp(timezone, ts) -%}from_utc_timestamp({{ ts }}, '{{ timezone }}'){%- endmacro %}

{% macro add_minutes(ts, minutes) %}{{ return(adapter.dispatch("add_minutes", "tarmac")(ts, minutes)) }}{% endmacro %}
{% macro default__add_minutes(ts, minutes) -%}({{ ts }} + to_minutes({{ minutes }})){%- endmacro %}
{% macro spark__add_minutes(ts, minutes) -%}timestampadd(MINUTE, {{ minutes }}, {{ ts }}){%- endmacro %}

{% macro date_digits(day) %}{{ return(adapter.dispatch("date_digits", "tarmac")(day)) }}{% endmacro %}
{% macro default__date_digits(day) -%}strftime({{ day }}, '%Y%m%d'){%- endmacro %}
{% macro spark__date_digits(day) -%}date_format({{ day }}, 'yyyyMMdd'){%- endmacro %}

{% macro iso_day_of_week(day) %}{{ return(adapter.dispatch("iso_day_of_week", "tarmac")(day)) }}{% endmacro %}
{% macro default__iso_day_of_week(day) -%}isodow({{ day }}){%- endmacro %}
{% macro spark__iso_day_of_week(day) -%}cast(extract(dow_iso from {{ day }}) as bigint){%- endmacro %}

{% macro int_div(dividend, divisor) %}{{ return(adapter.dispatch("int_div", "tarmac")(dividend, divisor)) }}{% endmacro %}
{% macro default__int_div(dividend, divisor) -%}({{ dividend }} // {{ divisor }}){%- endmacro %}
{% macro spark__int_div(dividend, divisor) -%}({{ dividend }} div {{ divisor }}){%- endmacro %}

{#- A query that fails with the message when the condition is false, for the row it is evaluated on. -#}
{% macro fail_unless(condition, message) %}{{ return(adapter.dispatch("fail_unless", "tarmac")(condition, message)) }}{% endmacro %}
{% macro default__fail_unless(condition, message) -%}
    case when {{ condition }} then true else error({{ message }}) end
{%- endmacro %}
{% macro spark__fail_unless(condition, message) -%}
    case when {{ condition }} then true else raise_error({{ message }}) is null end
{%- endmacro %}

{#- A RANGE frame's start, `width` before the current row and excluding that edge: event times are
    whole minutes, so (width - 1 microsecond) PRECEDING. Spark takes only a literal here. -#}
{% macro open_range_start(width) %}{{ return(adapter.dispatch("open_range_start", "tarmac")(width)) }}{% endmacro %}
{% macro default__open_range_start(width) -%}(interval {{ width }} - interval 1 microsecond) preceding{%- endmacro %}
{% macro spark__open_range_start(width) -%}
    {%- set amount, unit = width.split() -%}
    {%- set seconds = amount | int * {"minute": 60, "hour": 3600, "day": 86400}[unit] -%}
    interval '{{ seconds - 1 }}.999999' second preceding
{%- endmacro %}
