{#- Bronze reads landing files as bytes, then as lines, not through a CSV parser: every physical
    line becomes a row with its exact line number, so a malformed line is kept and reported instead
    of skipped (a CSV reader drops blank lines and renumbers what follows), and the file's checksum
    comes from the same single read.

    A daily file that cannot be read at all (empty, not UTF-8, a header that is not the contract's)
    is rejected, not raised: bronze_rejected_files records it with the reason and, for an encoding
    error, the line and byte offset, and its day's checks fail. The other days of the run load.
    Benign variations of the header are read by name: column order, case, surrounding blanks and
    quotes, a byte-order mark and CRLF line ends. -#}

{% macro landing_columns(dataset) %}
    {#- The delivery contract: the landing source's column list. The graph is only populated at
        execution; parsing needs no columns. -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set node = graph.sources["source.tarmac.landing." ~ dataset] -%}
    {{ return(node.columns.keys() | list) }}
{% endmacro %}

{% macro landing_root() -%}
    {{ env_var("TARMAC_DATA_DIR", "../data") }}/landing
{%- endmacro %}

{% macro landing_files(dataset, partitioned=true) %}
    {#- The landing files of the partition window (or the one reference file); absent days have
        no file, which the freshness and missing-value checks report. -#}
    {{ return(adapter.dispatch("landing_files", "tarmac")(dataset, partitioned)) }}
{% endmacro %}

{% macro default__landing_files(dataset, partitioned) %}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set root = landing_root() -%}
    {%- if partitioned -%}
        {%- set query -%}
            select file from glob('{{ root }}/{{ dataset }}/*.csv')
            where {{ landing_file_in_window("file") }}
            order by file
        {%- endset -%}
        {{ return(run_query(query).columns[0].values() | list) }}
    {%- else -%}
        {{ return([root ~ "/reference/" ~ dataset ~ ".csv"]) }}
    {%- endif -%}
{% endmacro %}

{% macro spark__landing_files(dataset, partitioned) %}
    {#- A pattern, not a list: Spark lists the folder as it reads it (landing_blobs keeps the
        window's files), and a folder without files of the window gives no rows. -#}
    {%- set root = landing_root() -%}
    {{ return([root ~ "/" ~ dataset ~ "/*.csv"] if partitioned else [root ~ "/reference/" ~ dataset ~ ".csv"]) }}
{% endmacro %}

{% macro landing_file_in_window(file) -%}
    try_cast(regexp_extract({{ file }}, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) >= {{ window_start() }}
    and try_cast(regexp_extract({{ file }}, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) < {{ window_end() }}
{%- endmacro %}

{#- Each landing file of the list as (filename, content): its path and its bytes. -#}
{% macro landing_blob_rows(files, partitioned) %}{{ return(adapter.dispatch("landing_blob_rows", "tarmac")(files, partitioned)) }}{% endmacro %}
{% macro default__landing_blob_rows(files, partitioned) -%}
    select filename, content from read_blob({{ sql_list(files) }})
{%- endmacro %}
{% macro spark__landing_blob_rows(files, partitioned) -%}
    select regexp_replace(path, '^file:(//)?', '') as filename, content
    from binaryFile.`{{ files[0] }}`
    {%- if partitioned %}
    where {{ landing_file_in_window("path") }}
    {%- endif %}
{%- endmacro %}

{#- A blob's text when it is well-formed UTF-8, else NULL. -#}
{% macro utf8_text(blob) %}{{ return(adapter.dispatch("utf8_text", "tarmac")(blob)) }}{% endmacro %}
{% macro default__utf8_text(blob) -%}try(decode({{ blob }})){%- endmacro %}
{% macro spark__utf8_text(blob) -%}
    case when is_valid_utf8(cast({{ blob }} as string)) then cast({{ blob }} as string) end
{%- endmacro %}

{#- The byte-order mark (U+FEFF) as a one-character string. -#}
{% macro byte_order_mark() %}{{ return(adapter.dispatch("byte_order_mark", "tarmac")()) }}{% endmacro %}
{% macro default__byte_order_mark() -%}chr(65279){%- endmacro %}
{% macro spark__byte_order_mark() -%}decode(unhex('EFBBBF'), 'UTF-8'){%- endmacro %}

{#- One row per element of each row's list of lines: its 1-based position and the line. -#}
{% macro numbered_lines(relation, columns, lines) %}{{ return(adapter.dispatch("numbered_lines", "tarmac")(relation, columns, lines)) }}{% endmacro %}
{% macro default__numbered_lines(relation, columns, lines) -%}
    select {{ columns | join(", ") }}, generate_subscripts({{ lines }}, 1) as line_number, unnest({{ lines }}) as line
    from {{ relation }}
{%- endmacro %}
{% macro spark__numbered_lines(relation, columns, lines) -%}
    select {{ columns | join(", ") }}, cast(position + 1 as bigint) as line_number, line
    from {{ relation }} lateral view posexplode({{ lines }}) numbered as position, line
{%- endmacro %}

{% macro csv_fields(line) -%}
    {#- RFC 4180 fields of one line: quoted fields may hold commas and doubled quotes. -#}
    case when instr({{ line }}, '"') = 0 then {{ split_text(line, "','") }}
         else {{ list_transform(
             "regexp_extract_all(" ~ line ~ " || ',', '(\"(?:[^\"]|\"\")*\"|[^,\"]*),', 1)", "f",
             "case when f like '\"%\"' then replace(substr(f, 2, length(f) - 2), '\"\"', '\"') else f end") }}
    end
{%- endmacro %}

{% macro sql_list(values) -%}
    {%- set quoted = [] -%}
    {%- for v in values %}{% do quoted.append("'" ~ v ~ "'") %}{% endfor -%}
    {{ list_of(quoted) }}
{%- endmacro %}

{% macro utf8_valid_prefix_hex(content) %}{{ return(adapter.dispatch("utf8_valid_prefix_hex", "tarmac")(content)) }}{% endmacro %}
{% macro default__utf8_valid_prefix_hex(content) -%}
    {#- The hex digits of the longest prefix of a blob that is well-formed UTF-8 (two digits a
        byte; the pattern consumes whole bytes from the start, so pairs stay aligned). -#}
    regexp_extract(hex({{ content }}),
        '^(?:[0-7][0-9A-F]|(?:C[2-9A-F]|D[0-9A-F])[89AB][0-9A-F]|E[0-9A-F](?:[89AB][0-9A-F]){2}|F[0-4](?:[89AB][0-9A-F]){3})*', 0)
{%- endmacro %}
{% macro spark__utf8_valid_prefix_hex(content) -%}
    {#- The same prefix, found by the first replacement character make_valid_utf8 puts in place of
        an ill-formed sequence (a repeated group over a whole file's hex would overflow Java's
        regular-expression stack); a U+FFFD the file itself holds before that byte counts as the end. -#}
    hex(encode(substr(make_valid_utf8(cast({{ content }} as string)), 1,
        instr(make_valid_utf8(cast({{ content }} as string)), decode(unhex('EFBFBD'), 'UTF-8')) - 1), 'UTF-8'))
{%- endmacro %}

{#- The length of a text in bytes of UTF-8. -#}
{% macro byte_length(text) %}{{ return(adapter.dispatch("byte_length", "tarmac")(text)) }}{% endmacro %}
{% macro default__byte_length(text) -%}strlen({{ text }}){%- endmacro %}
{% macro spark__byte_length(text) -%}octet_length({{ text }}){%- endmacro %}

{% macro checked_landing_files(dataset, partitioned=true) %}
{#- One row per landing file of the window: its lineage, its lines, where each contract column
    sits in its header, and why it cannot be read (rejection_reason; NULL when it can). -#}
{%- set files = landing_files(dataset, partitioned) -%}
{%- set columns = landing_columns(dataset) -%}
with landing_blobs as (
    {%- if files %}
    -- paths relative to the data directory, so that lineage survives moving it
    select replace(filename, '{{ env_var("TARMAC_DATA_DIR", "../data") }}/', '') as source_file,
           md5(content) as file_checksum,
           cast(octet_length(content) as bigint) as size_bytes,
           content as bytes,
           {{ utf8_text("content") }} as text
    from ({{ landing_blob_rows(files, partitioned) }}) blobs
    {%- else %}
    select cast(null as {{ sql_type("varchar") }}) as source_file, cast(null as {{ sql_type("varchar") }}) as file_checksum,
        cast(null as bigint) as size_bytes, cast(null as {{ sql_type("blob") }}) as bytes, cast(null as {{ sql_type("varchar") }}) as text
    where false
    {%- endif %}
),

landing_texts as (
    select
        source_file, file_checksum, size_bytes,
        -- a byte-order mark says how the file is encoded; it is not part of the first column's name
        case when substr(text, 1, 1) = {{ byte_order_mark() }} then substr(text, 2) else text end as content,
        -- where the first byte that is not UTF-8 sits, for the rejection's message
        case when text is null then {{ utf8_valid_prefix_hex("bytes") }} end as valid_prefix_hex,
        case when text is null then bytes end as bytes
    from landing_blobs
),

landing_lines as (
    select
        *,
        {{ split_text("content", "chr(10)") }} as lines,
        {{ list_transform(split_text("trim(trailing chr(13) from " ~ list_at(split_text("content", "chr(10)"), 1) ~ ")", "','"),
                          "h", "lower(trim(both '\"' from trim(h)))") }} as header
    from landing_texts
),

landing_headers as (
    select
        *,
        {{ list_transform(sql_list(columns), "c", "cast(array_position(header, c) as integer)") }} as column_positions,
        {{ list_filter(sql_list(columns), "c", "not array_contains(header, c)") }} as missing_columns,
        {{ list_filter("header", "h", "not array_contains(" ~ sql_list(columns) ~ ", h)") }} as unexpected_columns,
        {{ list_len("header") }} - {{ list_len("array_distinct(header)") }} as repeated_columns
    from landing_lines
)

select
    {%- if partitioned %}
    cast(regexp_extract(source_file, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) as landing_date,
    {%- endif %}
    '{{ dataset }}' as dataset,
    source_file,
    file_checksum,
    size_bytes,
    lines,
    column_positions,
    case
        when size_bytes = 0 then 'empty file (0 bytes): expected at least the header line'
        when content is null then {{ fmt(
            'not UTF-8 text: byte 0x{} at byte offset {} (line {}, byte {} of that line) is not valid UTF-8',
            ["substr(hex(bytes), length(valid_prefix_hex) + 1, 2)", int_div("length(valid_prefix_hex)", 2),
             "encoding_error_line", "encoding_error_line_offset"]) }}
        when {{ list_len("missing_columns") }} > 0 or {{ list_len("unexpected_columns") }} > 0 or repeated_columns > 0 then {{ fmt(
            'header does not match the ' ~ dataset ~ ' contract: missing columns {}, unexpected columns {}, '
            ~ '{} repeated; expected the columns "' ~ columns | join(",") ~ '" in any order',
            [list_text("missing_columns"), list_text("unexpected_columns"), "repeated_columns"]) }}
    end as rejection_reason,
    encoding_error_line,
    case when content is null and size_bytes > 0 then cast({{ int_div("length(valid_prefix_hex)", 2) }} as bigint) end as encoding_error_byte_offset
from (
    select
        *,
        -- the invalid byte's line (1-based) and its offset within that line (0-based), counted on
        -- the well-formed prefix before it
        case when content is null and size_bytes > 0 then
            cast({{ list_len(split_text(utf8_text("unhex(valid_prefix_hex)"), "chr(10)")) }} as bigint) end as encoding_error_line,
        case when content is null and size_bytes > 0 then
            cast({{ byte_length(list_at(split_text(utf8_text("unhex(valid_prefix_hex)"), "chr(10)"), -1)) }} as bigint) end as encoding_error_line_offset
    from landing_headers
) located
{% endmacro %}

{% macro bronze_from_landing(dataset, partitioned=true) %}
{%- set columns = landing_columns(dataset) -%}
with checked_files as (
    {{ checked_landing_files(dataset, partitioned) }}
),

readable_files as (
    {%- if partitioned %}
    -- rejected files are recorded by bronze_rejected_files; their day's checks fail
    select * from checked_files where rejection_reason is null
    {%- else %}
    -- a reference table is one file: if it cannot be read, the table fails loudly
    select * from checked_files
    where {{ fail_unless("rejection_reason is null", fmt("landing file {}: {}", ["source_file", "rejection_reason"])) }}
    {%- endif %}
),

numbered as (
    {%- set kept = (["landing_date"] if partitioned else []) + ["source_file", "file_checksum", "column_positions",
        list_len("lines") ~ " as line_count", list_at("lines", -1) ~ " = '' as ends_with_newline"] %}
    {{ numbered_lines("readable_files", kept, "lines") }}
),

lines as (
    select
        {%- if partitioned %}
        landing_date,
        {%- endif %}
        source_file,
        file_checksum,
        column_positions,
        line_number as source_line_number,
        trim(trailing chr(13) from line) as raw_line,
        line_count,
        ends_with_newline
    from numbered
),

parsed as (
    select *, {{ csv_fields("raw_line") }} as fields
    from lines
    -- the header, and the empty string after the final newline, are not records
    where source_line_number > 1 and not (ends_with_newline and source_line_number = line_count)
)

select
    {%- if partitioned %}
    landing_date,
    {%- endif %}
    {%- for column in columns %}
    case when {{ list_len("fields") }} = {{ columns | length }}
        then {{ list_at("fields", list_at("column_positions", loop.index)) }} end as {{ column }},
    {%- endfor %}
    case
        when raw_line = '' then 'blank line'
        when {{ list_len("fields") }} < {{ columns | length }} then {{ fmt("missing columns: expected {} fields, found {}", [columns | length, list_len("fields")]) }}
        when {{ list_len("fields") }} > {{ columns | length }} then {{ fmt("too many columns: expected {} fields, found {}", [columns | length, list_len("fields")]) }}
    end as parse_error,
    raw_line,
    source_file,
    file_checksum,
    source_line_number,
    '{{ run_var("load_id") }}' as load_id,
    now() as ingested_at
from parsed
{% endmacro %}
