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
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set root = landing_root() -%}
    {%- if partitioned -%}
        {%- set query -%}
            select file from glob('{{ root }}/{{ dataset }}/*.csv')
            where try_cast(regexp_extract(file, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) >= {{ window_start() }}
              and try_cast(regexp_extract(file, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) < {{ window_end() }}
            order by file
        {%- endset -%}
        {{ return(run_query(query).columns[0].values() | list) }}
    {%- else -%}
        {{ return([root ~ "/reference/" ~ dataset ~ ".csv"]) }}
    {%- endif -%}
{% endmacro %}

{% macro csv_fields(line) -%}
    {#- RFC 4180 fields of one line: quoted fields may hold commas and doubled quotes. -#}
    case when strpos({{ line }}, '"') = 0 then string_split({{ line }}, ',')
         else list_transform(
             regexp_extract_all({{ line }} || ',', '("(?:[^"]|"")*"|[^,"]*),', 1),
             lambda f: case when f like '"%"' then replace(f[2:-2], '""', '"') else f end)
    end
{%- endmacro %}

{% macro sql_list(values) -%}
    [{% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %}]
{%- endmacro %}

{% macro utf8_valid_prefix_hex(content) -%}
    {#- The hex digits of the longest prefix of a blob that is well-formed UTF-8 (two digits a
        byte; the pattern consumes whole bytes from the start, so pairs stay aligned). -#}
    regexp_extract(hex({{ content }}),
        '^(?:[0-7][0-9A-F]|(?:C[2-9A-F]|D[0-9A-F])[89AB][0-9A-F]|E[0-9A-F](?:[89AB][0-9A-F]){2}|F[0-4](?:[89AB][0-9A-F]){3})*')
{%- endmacro %}

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
           octet_length(content) as size_bytes,
           content as bytes,
           try(decode(content)) as text
    from read_blob({{ sql_list(files) }})
    {%- else %}
    select null::varchar as source_file, null::varchar as file_checksum, null::bigint as size_bytes,
           null::blob as bytes, null::varchar as text
    where false
    {%- endif %}
),

landing_texts as (
    select
        * exclude (bytes, text),
        -- a byte-order mark says how the file is encoded; it is not part of the first column's name
        case when starts_with(text, chr(65279)) then text[2:] else text end as content,
        -- where the first byte that is not UTF-8 sits, for the rejection's message
        case when text is null then {{ utf8_valid_prefix_hex("bytes") }} end as valid_prefix_hex,
        case when text is null then bytes end as bytes
    from landing_blobs
),

landing_lines as (
    select
        *,
        string_split(content, chr(10)) as lines,
        list_transform(string_split(rtrim(string_split(content, chr(10))[1], chr(13)), ','),
                       lambda h: lower(trim(trim(h), '"'))) as header
    from landing_texts
),

landing_headers as (
    select
        *,
        list_transform({{ sql_list(columns) }}, lambda c: list_position(header, c)) as column_positions,
        list_filter({{ sql_list(columns) }}, lambda c: not list_contains(header, c)) as missing_columns,
        list_filter(header, lambda h: not list_contains({{ sql_list(columns) }}, h)) as unexpected_columns,
        len(header) - len(list_distinct(header)) as repeated_columns
    from landing_lines
)

select
    {%- if partitioned %}
    regexp_extract(source_file, '(\d{4}-\d{2}-\d{2})\.csv$', 1)::date as landing_date,
    {%- endif %}
    '{{ dataset }}' as dataset,
    source_file,
    file_checksum,
    size_bytes,
    lines,
    column_positions,
    case
        when size_bytes = 0 then 'empty file (0 bytes): expected at least the header line'
        when content is null then format(
            'not UTF-8 text: byte 0x{} at byte offset {} (line {}, byte {} of that line) is not valid UTF-8',
            substr(hex(bytes), len(valid_prefix_hex) + 1, 2), len(valid_prefix_hex) // 2,
            encoding_error_line, encoding_error_line_offset)
        when len(missing_columns) > 0 or len(unexpected_columns) > 0 or repeated_columns > 0 then format(
            'header does not match the {{ dataset }} contract: missing columns {}, unexpected columns {}, '
            || '{} repeated; expected the columns "{}" in any order',
            missing_columns, unexpected_columns, repeated_columns, '{{ columns | join(",") }}')
    end as rejection_reason,
    encoding_error_line,
    case when content is null and size_bytes > 0 then len(valid_prefix_hex) // 2 end as encoding_error_byte_offset
from (
    select
        *,
        -- the invalid byte's line (1-based) and its offset within that line (0-based), counted on
        -- the well-formed prefix before it
        case when content is null and size_bytes > 0 then
            len(string_split(decode(unhex(valid_prefix_hex)), chr(10))) end as encoding_error_line,
        case when content is null and size_bytes > 0 then
            strlen(string_split(decode(unhex(valid_prefix_hex)), chr(10))[-1]) end as encoding_error_line_offset
    from landing_headers
)
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
    where case when rejection_reason is null then true
               else error(format('landing file {}: {}', source_file, rejection_reason)) end
    {%- endif %}
),

lines as (
    select
        {%- if partitioned %}
        landing_date,
        {%- endif %}
        source_file,
        file_checksum,
        column_positions,
        generate_subscripts(lines, 1) as source_line_number,
        rtrim(unnest(lines), chr(13)) as raw_line,
        len(lines) as line_count,
        lines[-1] = '' as ends_with_newline
    from readable_files
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
    case when len(fields) = {{ columns | length }} then fields[column_positions[{{ loop.index }}]] end as {{ column }},
    {%- endfor %}
    case
        when raw_line = '' then 'blank line'
        when len(fields) < {{ columns | length }} then format('missing columns: expected {} fields, found {}', {{ columns | length }}, len(fields))
        when len(fields) > {{ columns | length }} then format('too many columns: expected {} fields, found {}', {{ columns | length }}, len(fields))
    end as parse_error,
    raw_line,
    source_file,
    file_checksum,
    source_line_number,
    '{{ run_var("load_id") }}' as load_id,
    now() as ingested_at
from parsed
{% endmacro %}
