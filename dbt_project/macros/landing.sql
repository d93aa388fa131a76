{#- Bronze reads landing files as lines, not through a CSV parser: every physical line becomes a
    row with its exact line number, so a malformed line is kept and reported instead of skipped
    (a CSV reader drops blank lines and renumbers what follows), and the file's checksum comes
    from the same single read. The expected header is the landing source's column list. -#}

{% macro landing_columns(dataset) %}
    {#- The graph is only populated at execution; parsing needs no columns. -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set node = graph.sources["source.tarmac.landing." ~ dataset] -%}
    {{ return(node.columns.keys() | list) }}
{% endmacro %}

{% macro landing_files(dataset, partitioned=true) %}
    {#- The landing files of the partition window (or the one reference file); absent days have
        no file, which the freshness and missing-value checks report. -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set root = env_var("TARMAC_DATA_DIR", "../data") ~ "/landing" -%}
    {%- if partitioned -%}
        {%- set query -%}
            select file from glob('{{ root }}/{{ dataset }}/*.csv')
            where try_cast(regexp_extract(file, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) >= {{ window_start() }}
              and try_cast(regexp_extract(file, '(\d{4}-\d{2}-\d{2})\.csv$', 1) as date) < {{ window_end() }}
            order by file
        {%- endset -%}
        {{ return(run_query(query).columns[0].values() | list) }}
    {%- else -%}
        {%- set path = root ~ "/reference/" ~ dataset ~ ".csv" -%}
        {{ return([path]) }}
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

{% macro bronze_from_landing(dataset, partitioned=true) %}
{%- set files = landing_files(dataset, partitioned) -%}
{%- set columns = landing_columns(dataset) -%}
{%- set expected_header = columns | join(",") -%}
with files as (
    {%- if files %}
    -- paths relative to the data directory, so that lineage survives moving it
    select replace(filename, '{{ env_var("TARMAC_DATA_DIR", "../data") }}/', '') as source_file,
           md5(content) as file_checksum,
           content,
           string_split(content, chr(10)) as lines
    from read_text({{ sql_list(files) }})
    {%- else %}
    select null::varchar as source_file, null::varchar as file_checksum, null::varchar as content,
           null::varchar[] as lines
    where false
    {%- endif %}
),

checked_files as (
    -- A file without the contract's header cannot be read at all: fail the partition loudly.
    select *,
        case
            when content = '' then error(format(
                'landing file {}: empty file (0 bytes); expected at least the header line "{}"',
                source_file, '{{ expected_header }}'))
            when rtrim(lines[1], chr(13)) <> '{{ expected_header }}' then error(format(
                'landing file {}: header does not match the {{ dataset }} contract; missing columns: {}; unexpected columns: {}; expected "{}"',
                source_file,
                list_filter({{ sql_list(columns) }}, lambda c: not list_contains(string_split(rtrim(lines[1], chr(13)), ','), c)),
                list_filter(string_split(rtrim(lines[1], chr(13)), ','), lambda c: not list_contains({{ sql_list(columns) }}, c)),
                '{{ expected_header }}'))
        end as header_error
    from files
),

lines as (
    select
        source_file,
        file_checksum,
        generate_subscripts(lines, 1) as source_line_number,
        rtrim(unnest(lines), chr(13)) as raw_line,
        len(lines) as line_count,
        content[-1:] = chr(10) as ends_with_newline
    from checked_files
    where header_error is null
),

parsed as (
    select *, {{ csv_fields("raw_line") }} as fields
    from lines
    -- the header, and the empty string after the final newline, are not records
    where source_line_number > 1 and not (ends_with_newline and source_line_number = line_count)
)

select
    {%- if partitioned %}
    regexp_extract(source_file, '(\d{4}-\d{2}-\d{2})\.csv$', 1)::date as landing_date,
    {%- endif %}
    {%- for column in columns %}
    case when len(fields) = {{ columns | length }} then fields[{{ loop.index }}] end as {{ column }},
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
