-- The checks' floor: the statistics the daily asset checks evaluate, for every day of a range, by
-- one hand-written DuckDB script over the materialized warehouse (read-only; its results are temp
-- tables). No Dagster, no ibis or Pandera, no monitoring records, no evaluation events: what
-- evaluating the checks costs at the least, so that the check steps' time divided by this one's
-- says what the checks' machinery adds (bench/floor_parts.py runs it).
--
-- What it computes, over the same tables, columns and days as the checks (tarmac.yaml's defaults):
-- - schema: per day, the contracts' value rules as counts of breaking values: bronze's landed text
--   that is not of its field's type (the contracts' patterns) and its lineage columns; silver's and
--   gold's required values missing, bounds, domains and key patterns; flight_id's uniqueness;
--   gold.training_set as gold.flight_features, plus its label; the reference tables' keys and bounds.
-- - freshness: the latest landed event of each bronze day, as a lag before local midnight.
-- - volume: bronze rows per day and per origin and carrier (weather: origin), each day's expected
--   rows (the median of its weekday's reference days) and each segment's ratio relative to the
--   day's; silver's load audit (duplicates dropped, rows quarantined).
-- - missing values: each day's null rate of the checked columns, and weather's completeness.
-- - value ranges: impossible values (silver: the values its rules nulled, from the quarantine;
--   gold: the feature registry's bounds), the rows breaking each cross-column rule, codes the
--   reference window never had, each column's scale (mean |value|) against the median of its
--   reference days', and outliers beyond 6 IQR of the reference window's exact quartiles.
-- - drift: gold's numeric features as per-day sketches (count, mean, variance, 100 quantiles)
--   pooled over the reference window, the normed Wasserstein distance and KS statistic of the day
--   against them; its categorical features' Jensen-Shannon distance and new categories; silver
--   flights' per-carrier lower quartile of departure delay relative to the day's, against the
--   median of its reference days.
-- - correlation: Pearson's r of distance_mi and plane_seats on the day and over its reference window.
-- Each day is judged against its trailing reference window, the 28 days before it.
--
-- What it leaves out: Pandera's machinery and the columns' types (a catalog lookup); the failure
-- cases' examples and their landing lines; the thresholds' calibration on the reference's own
-- day-to-day variation (drift's, the scale's and the segments' leave-one-day-out nulls: 28 more
-- comparisons of the same small per-day summaries) and the severities and verdicts drawn from the
-- statistics; drift persistence; and the checks that are not SQL statistics over these tables:
-- training/serving parity (a replay through the online path, the online step's checks) and model
-- performance (gold.predictions against the model's score reference, the ml step's).
--
-- `${FIRST}` and `${LAST}` are replaced by the range's first and last day.

-- the bronze contracts' patterns for landed text (tarmac/quality/contracts.py)
create temp macro bad_integer(x) as not regexp_full_match(x, '-?\d+|NA|');
create temp macro bad_decimal(x) as not regexp_full_match(x, '-?\d+(\.\d+)?([eE]-?\d+)?|NA|');
create temp macro bad_utc(x) as not regexp_full_match(x, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z|NA|');
create temp macro bad_code(x) as not regexp_full_match(x, '[A-Za-z0-9]+');
create temp macro bad_checksum(x) as x is null or not regexp_full_match(x, '[0-9a-f]{32}');
create temp macro outside(x, lo, hi) as x < lo or x > hi;
-- the scale statistic's |log ratio| of two magnitudes, at most 20 (tarmac/quality/ranges.py)
create temp macro log_ratio(a, b) as case when a = b then 0.0 when a <= 0 or b <= 0 then 20.0
                                          else least(abs(ln(a / b)), 20.0) end;

create temp table judged as
select range::date as day from range(date '${FIRST}', date '${LAST}' + 1, interval 1 day);

-- each judged day's reference days: the 28 before it
create temp table reference as
select j.day, j.day - r.i::integer as ref from judged j, range(1, 29) r(i);

-- every day a statistic reads: the judged days and their reference days
create temp table span as
select (select min(day) - 28 from judged) as first_day, (select max(day) from judged) as last_day;

-- ---------------------------------------------------------------- bronze (schema, freshness)

create temp table bronze_flights_day as
select
    landing_date as day, count(*) as row_count,
    count_if(bad_integer(year)) as year, count_if(bad_integer(month)) as month, count_if(bad_integer("day")) as day_,
    count_if(bad_integer(dep_time)) as dep_time, count_if(bad_integer(sched_dep_time)) as sched_dep_time,
    count_if(bad_integer(dep_delay)) as dep_delay, count_if(bad_integer(arr_time)) as arr_time,
    count_if(bad_integer(sched_arr_time)) as sched_arr_time, count_if(bad_integer(arr_delay)) as arr_delay,
    count_if(bad_code(carrier)) as carrier, count_if(bad_integer(flight)) as flight,
    count_if(bad_code(origin)) as origin, count_if(bad_code(dest)) as dest,
    count_if(bad_integer(air_time)) as air_time, count_if(bad_integer(distance)) as distance,
    count_if(bad_integer(hour)) as hour, count_if(bad_integer(minute)) as minute,
    count_if(bad_utc(time_hour)) as time_hour,
    count_if(parse_error is not null) as parse_error,
    count_if(raw_line is null or source_file is null or load_id is null or ingested_at is null) as lineage_missing,
    count_if(bad_checksum(file_checksum)) as file_checksum,
    count_if(source_line_number is null or source_line_number < 2) as source_line_number,
    -- freshness: the latest scheduled departure, in local minutes of the day
    max(try_cast(sched_dep_time as integer) // 100 * 60 + try_cast(sched_dep_time as integer) % 100) as latest_minute
from bronze.flights
where landing_date between (select first_day from span) and (select last_day from span)
group by 1;

create temp table bronze_weather_day as
select
    landing_date as day, count(*) as row_count,
    count_if(bad_code(origin)) as origin, count_if(bad_integer(year)) as year, count_if(bad_integer(month)) as month,
    count_if(bad_integer("day")) as day_, count_if(bad_integer(hour)) as hour,
    count_if(bad_decimal(temp)) as temp, count_if(bad_decimal(dewp)) as dewp, count_if(bad_decimal(humid)) as humid,
    count_if(bad_decimal(wind_dir)) as wind_dir, count_if(bad_decimal(wind_speed)) as wind_speed,
    count_if(bad_decimal(wind_gust)) as wind_gust, count_if(bad_decimal(precip)) as precip,
    count_if(bad_decimal(pressure)) as pressure, count_if(bad_decimal(visib)) as visib,
    count_if(bad_utc(time_hour)) as time_hour,
    count_if(parse_error is not null) as parse_error,
    count_if(raw_line is null or source_file is null or load_id is null or ingested_at is null) as lineage_missing,
    count_if(bad_checksum(file_checksum)) as file_checksum,
    count_if(source_line_number is null or source_line_number < 2) as source_line_number,
    max(try_cast(hour as integer) * 60) as latest_minute
from bronze.weather
where landing_date between (select first_day from span) and (select last_day from span)
group by 1;

create temp table freshness as
select 'flights' as dataset, j.day, coalesce(b.row_count, 0) as row_count, 1440 - coalesce(b.latest_minute, 0) as lag_minutes
from judged j left join bronze_flights_day b using (day)
union all
select 'weather', j.day, coalesce(b.row_count, 0), 1440 - coalesce(b.latest_minute, 0)
from judged j left join bronze_weather_day b using (day);

-- ---------------------------------------------------------------- volume

create temp table bronze_segments as
select 'flights' as dataset, landing_date as day, if(grouping(origin) = 0, 'origin', 'carrier') as column_name,
       coalesce(origin, carrier) as value, count(*) as n
from bronze.flights
where landing_date between (select first_day from span) and (select last_day from span)
group by grouping sets ((landing_date, origin), (landing_date, carrier))
union all
select 'weather', landing_date, 'origin', origin, count(*)
from bronze.weather
where landing_date between (select first_day from span) and (select last_day from span)
group by 1, 2, 3, 4;

-- each day's basis: the reference days with rows of its weekday, else all those with rows
create temp table volume_basis as
with counts as (
    select 'flights' as dataset, day, row_count from bronze_flights_day
    union all select 'weather', day, row_count from bronze_weather_day
)
select r.day, c.dataset, r.ref, c.row_count,
       count(*) over (partition by r.day, c.dataset) as reference_days
from reference r join counts c on c.day = r.ref
where c.row_count > 0
qualify dayofweek(r.ref) = dayofweek(r.day)
     or count_if(dayofweek(r.ref) = dayofweek(r.day)) over (partition by r.day, c.dataset) = 0;

create temp table volume as
with expected as (
    select day, dataset, median(row_count) as expected_rows, count(*) as basis_days,
           any_value(reference_days) as reference_days
    from volume_basis group by all
),
audit as (
    select landing_date as day, dataset, sum(bronze_rows) as bronze_rows, sum(duplicates_dropped) as duplicates,
           sum(quarantined_rows) as quarantined
    from silver.load_audit
    where landing_date between (select min(day) from judged) and (select max(day) from judged)
    group by all
)
select j.day, d.dataset, coalesce(c.row_count, 0) as row_count, e.expected_rows, e.basis_days, e.reference_days,
       coalesce(c.row_count, 0) / e.expected_rows as rows_ratio,
       coalesce(a.duplicates, 0) / greatest(coalesce(a.bronze_rows, 0), 1) as duplicate_share,
       coalesce(a.quarantined, 0) / greatest(coalesce(a.bronze_rows, 0), 1) as quarantined_share
from judged j
cross join (values ('flights'), ('weather')) d(dataset)
left join (select 'flights' as dataset, day, row_count from bronze_flights_day
           union all select 'weather', day, row_count from bronze_weather_day) c
    on c.day = j.day and c.dataset = d.dataset
left join expected e on e.day = j.day and e.dataset = d.dataset
left join audit a on a.day = j.day and a.dataset = d.dataset;

-- each segment's rows against the median of its basis days' (0 on a basis day without it)
create temp table volume_segments as
with segments as (  -- the segments seen on some basis day
    select distinct b.day, b.dataset, s.column_name, s.value
    from volume_basis b join bronze_segments s on s.dataset = b.dataset and s.day = b.ref
),
expected as (
    select g.day, g.dataset, g.column_name, g.value, median(coalesce(s.n, 0)) as expected
    from segments g
    join volume_basis b on b.day = g.day and b.dataset = g.dataset
    left join bronze_segments s on s.dataset = g.dataset and s.day = b.ref and s.column_name = g.column_name
                                and s.value is not distinct from g.value
    group by all
)
select e.*, coalesce(s.n, 0) as row_count, coalesce(s.n, 0) / e.expected / v.rows_ratio as relative
from expected e
join volume v on v.day = e.day and v.dataset = e.dataset
left join bronze_segments s on s.dataset = e.dataset and s.day = e.day and s.column_name = e.column_name
                            and s.value is not distinct from e.value
where e.expected >= 20 and v.rows_ratio > 0;

-- ---------------------------------------------------------------- silver: one scan per table

create temp table silver_flights_day as
select
    flight_date as day, count(*) as row_count,
    -- schema
    count_if(flight_id is null or flight_date is null or year is null or month is null or "day" is null
             or carrier is null or flight is null or origin is null or dest is null or hour is null
             or minute is null or sched_dep_time is null or sched_dep_minute_local is null or cancelled is null
             or sched_dep_ts is null or source_file is null or source_line_number is null
             or file_checksum is null or load_id is null or loaded_at is null) as required_missing,
    count_if(not regexp_full_match(flight_id, '[A-Z0-9]+-\d+-(EWR|JFK|LGA)-\d{8}')) as flight_id,
    count_if(outside(month, 1, 12)) as month, count_if(outside("day", 1, 31)) as day_, count_if(flight < 1) as flight,
    count_if(origin not in ('EWR', 'JFK', 'LGA')) as origin, count_if(outside(hour, 0, 23)) as hour,
    count_if(outside(minute, 0, 59)) as minute, count_if(outside(sched_dep_time, 0, 2359)) as sched_dep_time,
    count_if(outside(sched_dep_minute_local, 0, 1439)) as sched_dep_minute_local,
    count_if(outside(dep_time, 0, 2400)) as dep_time, count_if(outside(dep_minute_local, 0, 1440)) as dep_minute_local,
    count_if(outside(arr_time, 0, 2400)) as arr_time, count_if(outside(sched_arr_time, 0, 2400)) as sched_arr_time,
    count_if(outside(dep_delay, -120, 2880)) as dep_delay, count_if(outside(arr_delay, -240, 2880)) as arr_delay,
    count_if(outside(air_time, 1, 1440)) as air_time, count_if(outside(distance, 1, 6000)) as distance,
    count_if(source_line_number < 2) as source_line_number,
    -- missing values
    count(dep_delay) as n_dep_delay, count(arr_delay) as n_arr_delay, count(tailnum) as n_tailnum,
    -- rules: a delay is the actual minus the scheduled time, modulo a day
    count_if(not coalesce(((dep_minute_local - sched_dep_minute_local - dep_delay) % 1440 + 1440) % 1440 = 0, true))
        as dep_delay_is_dep_minus_sched,
    count_if(not coalesce((((arr_time // 100 * 60 + arr_time % 100) - (sched_arr_time // 100 * 60 + sched_arr_time % 100)
                             - arr_delay) % 1440 + 1440) % 1440 = 0, true)) as arr_delay_is_arr_minus_sched,
    -- scale: mean absolute value and values
    avg(abs(air_time::double)) as mag_air_time, count(air_time) as n_air_time,
    avg(abs(distance::double)) as mag_distance, count(distance) as n_distance
from silver.flights
where flight_date between (select first_day from span) and (select last_day from span)
group by 1;

create temp table silver_weather_day as
select
    obs_date as day, count(*) as row_count,
    count_if(origin is null or obs_ts is null or obs_date is null or obs_hour_local is null or source_file is null
             or source_line_number is null or file_checksum is null or load_id is null or loaded_at is null)
        as required_missing,
    count_if(origin not in ('EWR', 'JFK', 'LGA')) as origin, count_if(outside(obs_hour_local, 0, 23)) as obs_hour_local,
    count_if(outside(temp, -60, 130)) as temp, count_if(outside(dewp, -80, 100)) as dewp,
    count_if(outside(humid, 0, 100)) as humid, count_if(outside(wind_dir, 0, 360)) as wind_dir,
    count_if(outside(wind_speed, 0, 200)) as wind_speed, count_if(outside(wind_gust, 0, 250)) as wind_gust,
    count_if(outside(precip, 0, 10)) as precip, count_if(outside(pressure, 870, 1090)) as pressure,
    count_if(outside(visib, 0, 10)) as visib, count_if(source_line_number < 2) as source_line_number,
    count(temp) as n_temp, count(humid) as n_humid, count(wind_speed) as n_wind_speed, count(visib) as n_visib,
    count(precip) as n_precip,
    -- rules
    count_if(not coalesce(abs(humid - 100 * exp(17.625 * ((dewp - 32) / 1.8) / (243.04 + (dewp - 32) / 1.8))
                                    / exp(17.625 * ((temp - 32) / 1.8) / (243.04 + (temp - 32) / 1.8))) <= 10, true))
        as humid_from_temp_and_dewp,
    count_if(not coalesce(wind_dir % 10 = 0, true)) as wind_dir_in_tens_of_degrees,
    count_if(not coalesce(wind_gust >= wind_speed, true)) as gust_at_least_wind_speed,
    count_if(not coalesce(abs(wind_speed / 1.15078 - round(wind_speed / 1.15078)) <= 0.01, true))
        as wind_speed_in_whole_knots,
    avg(abs(humid)) as mag_humid, count(humid) as n_mag_humid, avg(abs(wind_speed)) as mag_wind_speed,
    avg(abs(wind_gust)) as mag_wind_gust, count(wind_gust) as n_wind_gust,
    avg(abs(pressure)) as mag_pressure, count(pressure) as n_pressure
from silver.weather
where obs_date between (select first_day from span) and (select last_day from span)
group by 1;

-- the values silver's domain rules nulled, per day and column (value_ranges' impossible values)
create temp table silver_impossible as
select landing_date as day, dataset, column_name, count(*) as n
from silver.quarantine
where landing_date between (select min(day) from judged) and (select max(day) from judged) and action = 'value_nulled'
group by all;

create temp table silver_side_tables_schema as
select 'quarantine' as table_name, landing_date as day, count(*) as row_count,
       count_if(dataset not in ('flights', 'weather') or action not in ('row_quarantined', 'value_nulled')
                or source_line_number < 1 or rule is null or reason is null or source_file is null
                or file_checksum is null or load_id is null or quarantined_at is null) as violations
from silver.quarantine
where landing_date between (select min(day) from judged) and (select max(day) from judged) group by 2
union all
select 'load_audit', landing_date, count(*),
       count_if(dataset not in ('flights', 'weather') or bronze_rows < 0 or silver_rows < 0 or quarantined_rows < 0
                or duplicates_dropped < 0 or values_nulled < 0 or audited_at is null)
from silver.load_audit
where landing_date between (select min(day) from judged) and (select max(day) from judged) group by 2;

-- ---------------------------------------------------------------- gold: one scan per table

create temp table gold_features_day as
select
    flight_date as day, count(*) as row_count,
    -- schema: required values, the registry's bounds and domains (value_ranges' impossible values too)
    count_if(flight_id is null or flight_date is null or sched_dep_ts is null or prediction_ts is null
             or carrier is null or origin is null or dest is null or dep_hour_local is null or day_of_week is null
             or month is null or origin_departures_1h is null or origin_cancelled_3h is null or load_id is null
             or computed_at is null) as required_missing,
    count_if(origin not in ('EWR', 'JFK', 'LGA')) as origin,
    count_if(outside(distance_mi, 1, 6000)) as distance_mi, count_if(outside(dep_hour_local, 0, 23)) as dep_hour_local,
    count_if(outside(day_of_week, 1, 7)) as day_of_week, count_if(outside(month, 1, 12)) as month,
    count_if(outside(origin_dep_delay_avg_1h, -120, 2880)) as origin_dep_delay_avg_1h,
    count_if(origin_departures_1h < 0) as origin_departures_1h, count_if(origin_cancelled_3h < 0) as origin_cancelled_3h,
    count_if(outside(carrier_dep_delay_avg_24h, -120, 2880)) as carrier_dep_delay_avg_24h,
    count_if(outside(route_dep_delay15_rate_7d, 0, 1)) as route_dep_delay15_rate_7d,
    count_if(outside(temp_f, -60, 130)) as temp_f, count_if(outside(wind_speed_mph, 0, 200)) as wind_speed_mph,
    count_if(outside(visib_mi, 0, 10)) as visib_mi, count_if(outside(precip_in, 0, 10)) as precip_in,
    count_if(outside(humid, 0, 100)) as humid, count_if(outside(plane_age_years, 0, 120)) as plane_age_years,
    count_if(outside(plane_seats, 1, 1000)) as plane_seats,
    -- missing values
    count(temp_f) as n_temp_f, count(wind_speed_mph) as n_wind_speed_mph, count(visib_mi) as n_visib_mi,
    count(carrier_dep_delay_avg_24h) as n_carrier_dep_delay_avg_24h,
    -- scale
    avg(abs(distance_mi::double)) as mag_distance_mi, count(distance_mi) as n_distance_mi,
    avg(abs(temp_f)) as mag_temp_f, avg(abs(wind_speed_mph)) as mag_wind_speed_mph,
    avg(abs(humid)) as mag_humid, count(humid) as n_humid,
    avg(abs(plane_seats::double)) as mag_plane_seats, count(plane_seats) as n_plane_seats,
    avg(abs(plane_age_years::double)) as mag_plane_age_years, count(plane_age_years) as n_plane_age_years,
    -- correlation: the pairs' sums, which pool over any set of days
    count(distance_mi * plane_seats) as corr_n,
    sum(distance_mi::double) filter (where plane_seats is not null) as corr_sx,
    sum(plane_seats::double) filter (where distance_mi is not null) as corr_sy,
    sum(distance_mi::double * distance_mi) filter (where plane_seats is not null) as corr_sxx,
    sum(plane_seats::double * plane_seats) filter (where distance_mi is not null) as corr_syy,
    sum(distance_mi::double * plane_seats) as corr_sxy
from gold.flight_features
where flight_date between (select first_day from span) and (select last_day from span)
group by 1;

create temp table gold_training_set_day as
select
    flight_date as day, count(*) as row_count,
    count_if(flight_id is null or flight_date is null or sched_dep_ts is null or prediction_ts is null
             or carrier is null or origin is null or dest is null or dep_hour_local is null or day_of_week is null
             or month is null or origin_departures_1h is null or origin_cancelled_3h is null or load_id is null
             or computed_at is null or is_delayed is null) as required_missing,
    count_if(origin not in ('EWR', 'JFK', 'LGA') or outside(distance_mi, 1, 6000) or outside(dep_hour_local, 0, 23)
             or outside(day_of_week, 1, 7) or outside(month, 1, 12) or outside(origin_dep_delay_avg_1h, -120, 2880)
             or origin_departures_1h < 0 or origin_cancelled_3h < 0 or outside(carrier_dep_delay_avg_24h, -120, 2880)
             or outside(route_dep_delay15_rate_7d, 0, 1) or outside(temp_f, -60, 130)
             or outside(wind_speed_mph, 0, 200) or outside(visib_mi, 0, 10) or outside(precip_in, 0, 10)
             or outside(humid, 0, 100) or outside(plane_age_years, 0, 120) or outside(plane_seats, 1, 1000))
        as rows_out_of_bounds
from gold.training_set
where flight_date between (select min(day) from judged) and (select max(day) from judged)
group by 1;

-- flight_id is each table's key: duplicates over the range
create temp table duplicate_keys as
select 'silver.flights' as table_name, count(*) - count(distinct flight_id) as duplicates from silver.flights
where flight_date between (select min(day) from judged) and (select max(day) from judged)
union all
select 'gold.flight_features', count(*) - count(distinct flight_id) from gold.flight_features
where flight_date between (select min(day) from judged) and (select max(day) from judged)
union all
select 'gold.training_set', count(*) - count(distinct flight_id) from gold.training_set
where flight_date between (select min(day) from judged) and (select max(day) from judged);

-- the reference tables' contracts (one evaluation each, unpartitioned)
create temp table reference_schema as
select 'silver.planes' as table_name, count(*) - count(distinct tailnum) as duplicates,
       count_if(outside(year, 1900, 2014) or outside(engines, 0, 8) or outside(seats, 1, 1000) or speed < 0
                or tailnum is null or source_line_number < 2) as violations
from silver.planes
union all
select 'silver.airports', count(*) - count(distinct faa),
       count_if(outside(lat, -90, 90) or outside(lon, -180, 180) or outside(utc_offset_hours, -12, 14) or faa is null
                or source_line_number < 2)
from silver.airports
union all
select 'silver.airlines', count(*) - count(distinct carrier), count_if(carrier is null or source_line_number < 2)
from silver.airlines
union all
select 'bronze.' || name, 0, count_if(parse_error is not null)
from (select 'planes' as name, parse_error from bronze.planes union all select 'airports', parse_error from bronze.airports
      union all select 'airlines', parse_error from bronze.airlines)
group by name;

-- ---------------------------------------------------------------- missing values

create temp table missing_values as
select j.day, 'silver.flights' as table_name, coalesce(s.row_count, 0) as row_count, null::double as completeness,
       map {'dep_delay': 1 - s.n_dep_delay / s.row_count, 'arr_delay': 1 - s.n_arr_delay / s.row_count,
            'tailnum': 1 - s.n_tailnum / s.row_count} as null_rates
from judged j left join silver_flights_day s using (day)
union all
select j.day, 'silver.weather', coalesce(w.row_count, 0), least(coalesce(w.row_count, 0) / 72, 1.0),
       map {'temp': 1 - w.n_temp / w.row_count, 'humid': 1 - w.n_humid / w.row_count,
            'wind_speed': 1 - w.n_wind_speed / w.row_count, 'visib': 1 - w.n_visib / w.row_count,
            'precip': 1 - w.n_precip / w.row_count}
from judged j left join silver_weather_day w using (day)
union all
select j.day, 'gold.flight_features', coalesce(g.row_count, 0), null,
       map {'temp_f': 1 - g.n_temp_f / g.row_count, 'wind_speed_mph': 1 - g.n_wind_speed_mph / g.row_count,
            'visib_mi': 1 - g.n_visib_mi / g.row_count,
            'carrier_dep_delay_avg_24h': 1 - g.n_carrier_dep_delay_avg_24h / g.row_count}
from judged j left join gold_features_day g using (day);

-- ---------------------------------------------------------------- value ranges: scale

-- each column's mean |value| per day, with its values
create temp table magnitudes as
select day, 'silver.flights' as table_name, column_name, magnitude, n
from silver_flights_day,
     lateral (values ('air_time', mag_air_time, n_air_time), ('distance', mag_distance, n_distance))
             m(column_name, magnitude, n)
union all
select day, 'silver.weather', column_name, magnitude, n
from silver_weather_day,
     lateral (values ('humid', mag_humid, n_mag_humid), ('wind_speed', mag_wind_speed, n_wind_speed),
                     ('wind_gust', mag_wind_gust, n_wind_gust), ('pressure', mag_pressure, n_pressure))
             m(column_name, magnitude, n)
union all
select day, 'gold.flight_features', column_name, magnitude, n
from gold_features_day,
     lateral (values ('distance_mi', mag_distance_mi, n_distance_mi), ('temp_f', mag_temp_f, n_temp_f),
                     ('wind_speed_mph', mag_wind_speed_mph, n_wind_speed_mph), ('humid', mag_humid, n_humid),
                     ('plane_seats', mag_plane_seats, n_plane_seats),
                     ('plane_age_years', mag_plane_age_years, n_plane_age_years))
             m(column_name, magnitude, n);

-- the day's magnitude against the median of its reference days' (those with 20 values)
create temp table scale as
with reference_median as (
    select r.day, m.table_name, m.column_name, median(m.magnitude) as reference, count(*) as reference_days
    from reference r join magnitudes m on m.day = r.ref
    where m.magnitude is not null and m.n >= 20
    group by all
)
select d.day, d.table_name, d.column_name, d.magnitude, rm.reference, rm.reference_days,
       case when d.n >= 20 then log_ratio(d.magnitude, rm.reference) end as log_ratio
from magnitudes d
join judged using (day)
left join reference_median rm using (day, table_name, column_name);

-- ---------------------------------------------------------------- value ranges: outliers

-- each day's fences: its reference window's exact quartiles, 6 interquartile ranges beyond them (a
-- join of each day with its reference days' rows, since quartiles need the values themselves),
-- and the values beyond them on the day, one scan of the day's rows per table
create temp macro fences(q) as [q[1] - 6 * (q[2] - q[1]), q[2] + 6 * (q[2] - q[1])];
create temp macro beyond(x, f) as x < f[1] or x > f[2];

create temp table outliers as
with silver_flights as (
    select r.day, fences(quantile_cont(f.air_time, [0.25, 0.75])) as air_time, count(f.air_time) as ref_air_time,
           fences(quantile_cont(f.distance, [0.25, 0.75])) as distance, count(f.distance) as ref_distance
    from reference r join silver.flights f on f.flight_date = r.ref
    group by 1
),
silver_weather as (
    select r.day, fences(quantile_cont(w.temp, [0.25, 0.75])) as temp, count(w.temp) as ref_temp,
           fences(quantile_cont(w.dewp, [0.25, 0.75])) as dewp, count(w.dewp) as ref_dewp,
           fences(quantile_cont(w.humid, [0.25, 0.75])) as humid, count(w.humid) as ref_humid,
           fences(quantile_cont(w.wind_speed, [0.25, 0.75])) as wind_speed, count(w.wind_speed) as ref_wind_speed
    from reference r join silver.weather w on w.obs_date = r.ref
    group by 1
),
gold as (
    select r.day, fences(quantile_cont(g.distance_mi, [0.25, 0.75])) as distance_mi,
           count(g.distance_mi) as ref_distance_mi,
           fences(quantile_cont(g.plane_seats, [0.25, 0.75])) as plane_seats, count(g.plane_seats) as ref_plane_seats,
           fences(quantile_cont(g.temp_f, [0.25, 0.75])) as temp_f, count(g.temp_f) as ref_temp_f,
           fences(quantile_cont(g.humid, [0.25, 0.75])) as humid, count(g.humid) as ref_humid
    from reference r join gold.flight_features g on g.flight_date = r.ref
    group by 1
),
silver_flights_beyond as (
    select f.day, f.ref_air_time, f.ref_distance,
           count(v.air_time) as n_air_time, count_if(beyond(v.air_time, f.air_time)) as air_time,
           count(v.distance) as n_distance, count_if(beyond(v.distance, f.distance)) as distance
    from silver_flights f join silver.flights v on v.flight_date = f.day
    group by all
),
silver_weather_beyond as (
    select f.day, f.ref_temp, f.ref_dewp, f.ref_humid, f.ref_wind_speed,
           count(v.temp) as n_temp, count_if(beyond(v.temp, f.temp)) as temp,
           count(v.dewp) as n_dewp, count_if(beyond(v.dewp, f.dewp)) as dewp,
           count(v.humid) as n_humid, count_if(beyond(v.humid, f.humid)) as humid,
           count(v.wind_speed) as n_wind_speed, count_if(beyond(v.wind_speed, f.wind_speed)) as wind_speed
    from silver_weather f join silver.weather v on v.obs_date = f.day
    group by all
),
gold_beyond as (
    select f.day, f.ref_distance_mi, f.ref_plane_seats, f.ref_temp_f, f.ref_humid,
           count(v.distance_mi) as n_distance_mi, count_if(beyond(v.distance_mi, f.distance_mi)) as distance_mi,
           count(v.plane_seats) as n_plane_seats, count_if(beyond(v.plane_seats, f.plane_seats)) as plane_seats,
           count(v.temp_f) as n_temp_f, count_if(beyond(v.temp_f, f.temp_f)) as temp_f,
           count(v.humid) as n_humid, count_if(beyond(v.humid, f.humid)) as humid
    from gold f join gold.flight_features v on v.flight_date = f.day
    group by all
)
select day, 'silver.flights' as table_name, c.*
from silver_flights_beyond,
     lateral (values ('air_time', n_air_time, ref_air_time, air_time), ('distance', n_distance, ref_distance, distance))
             c(column_name, n, reference_values, outliers)
union all
select day, 'silver.weather', c.*
from silver_weather_beyond,
     lateral (values ('temp', n_temp, ref_temp, temp), ('dewp', n_dewp, ref_dewp, dewp),
                     ('humid', n_humid, ref_humid, humid), ('wind_speed', n_wind_speed, ref_wind_speed, wind_speed))
             c(column_name, n, reference_values, outliers)
union all
select day, 'gold.flight_features', c.*
from gold_beyond,
     lateral (values ('distance_mi', n_distance_mi, ref_distance_mi, distance_mi),
                     ('plane_seats', n_plane_seats, ref_plane_seats, plane_seats),
                     ('temp_f', n_temp_f, ref_temp_f, temp_f), ('humid', n_humid, ref_humid, humid))
             c(column_name, n, reference_values, outliers);

-- ---------------------------------------------------------------- value ranges: new codes

create temp table code_counts as
select flight_date as day, 'silver.flights' as table_name,
       case when grouping(carrier) = 0 then 'carrier' when grouping(origin) = 0 then 'origin' else 'dest' end
           as column_name,
       coalesce(carrier, origin, dest) as code, count(*) as n
from silver.flights
where flight_date between (select first_day from span) and (select last_day from span)
group by grouping sets ((flight_date, carrier), (flight_date, origin), (flight_date, dest))
union all
select obs_date, 'silver.weather', 'origin', origin, count(*)
from silver.weather
where obs_date between (select first_day from span) and (select last_day from span)
group by 1, 2, 3, 4;

-- the day's codes its reference window never had, and the rows carrying them
create temp table new_codes as
with seen as (
    select distinct r.day, c.table_name, c.column_name, c.code
    from reference r join code_counts c on c.day = r.ref
)
select c.day, c.table_name, c.column_name, sum(c.n) as n,
       coalesce(sum(c.n) filter (where s.code is null), 0) as new_code_rows,
       list(c.code order by c.n desc) filter (where s.code is null) as new_codes
from code_counts c
join judged using (day)
left join seen s using (day, table_name, column_name, code)
where c.code is not null
group by all;

-- ---------------------------------------------------------------- drift: gold's features

-- numeric features: each day's count, mean, variance and 100-point quantile sketch
create temp table numeric_sketches as
with per_day as (
    select flight_date as day,
           count(origin_dep_delay_avg_1h) as n1, avg(origin_dep_delay_avg_1h) as m1, var_pop(origin_dep_delay_avg_1h) as v1,
           quantile_cont(origin_dep_delay_avg_1h, list_transform(range(100), lambda i: (i + 0.5) / 100)) as s1,
           count(carrier_dep_delay_avg_24h) as n2, avg(carrier_dep_delay_avg_24h) as m2,
           var_pop(carrier_dep_delay_avg_24h) as v2,
           quantile_cont(carrier_dep_delay_avg_24h, list_transform(range(100), lambda i: (i + 0.5) / 100)) as s2,
           count(route_dep_delay15_rate_7d) as n3, avg(route_dep_delay15_rate_7d) as m3,
           var_pop(route_dep_delay15_rate_7d) as v3,
           quantile_cont(route_dep_delay15_rate_7d, list_transform(range(100), lambda i: (i + 0.5) / 100)) as s3
    from gold.flight_features
    where flight_date between (select first_day from span) and (select last_day from span)
    group by 1
)
select day, column_name, n, mean, coalesce(variance, 0) as variance, sketch
from per_day,
     lateral (values ('origin_dep_delay_avg_1h', n1, m1, v1, s1), ('carrier_dep_delay_avg_24h', n2, m2, v2, s2),
                     ('route_dep_delay15_rate_7d', n3, m3, v3, s3)) c(column_name, n, mean, variance, sketch)
where n > 0;

-- the day's sketch against its reference days' pooled (each point carrying n / 100 of its day's
-- rows): |F_day - F_reference| over the merged points gives the Wasserstein distance (normed by
-- the reference's exact standard deviation) and the KS statistic
create temp table numeric_drift as
with usable as (  -- reference days with 50 rows
    select r.day, s.column_name, s.n, s.mean, s.variance, s.sketch
    from reference r join numeric_sketches s on s.day = r.ref
    where s.n >= 50
),
pooled as (  -- the days judged: 50 rows, 2 reference days
    select u.day, u.column_name, any_value(s.n) as n, any_value(s.sketch) as sketch, count(*) as reference_days,
           sum(u.n) as n_ref, sum(u.n * u.mean) / sum(u.n) as mean_ref,
           sum(u.n * (u.variance + u.mean * u.mean)) / sum(u.n) - pow(sum(u.n * u.mean) / sum(u.n), 2) as variance_ref
    from usable u join numeric_sketches s using (day, column_name)
    where s.n >= 50
    group by all
    having count(*) >= 2
),
points as (  -- F_day - F_reference steps up by the day's points and down by the reference's
    select day, column_name, unnest(sketch) as x, 1.0 / 100 as step from pooled
    union all
    select u.day, u.column_name, unnest(u.sketch), -u.n / 100 / p.n_ref
    from usable u join pooled p using (day, column_name)
),
gaps as (
    select day, column_name, abs(sum(step) over w) as gap, lead(x) over w - x as width
    from points
    -- the default frame ends after x's ties: F at x, and a width to the next distinct point
    window w as (partition by day, column_name order by x)
)
select day, column_name, p.n, p.n_ref, p.reference_days,
       sum(g.gap * coalesce(g.width, 0)) / sqrt(greatest(any_value(p.variance_ref), 0)) as wasserstein_normed,
       max(g.gap) as ks
from gaps g join pooled p using (day, column_name)
group by all;

-- categorical features: each day's counts per category
create temp table category_counts as
select flight_date as day,
       case when grouping(carrier) = 0 then 'carrier' when grouping(origin) = 0 then 'origin' else 'dep_hour_local' end
           as column_name,
       coalesce(carrier, origin, dep_hour_local::varchar) as category, count(*) as n
from gold.flight_features
where flight_date between (select first_day from span) and (select last_day from span)
group by grouping sets ((flight_date, carrier), (flight_date, origin), (flight_date, dep_hour_local));

-- the day's distribution against its reference days' summed: the Jensen-Shannon distance (base
-- 2) and the share of the day's rows in categories the reference never had
create temp table categorical_drift as
with totals as (
    select day, column_name, sum(n) as total from category_counts where category is not null group by all
),
usable as (  -- reference days with 50 rows
    select r.day, c.column_name, r.ref, c.category, c.n
    from reference r
    join totals t on t.day = r.ref
    join category_counts c on c.day = r.ref and c.column_name = t.column_name
    where t.total >= 50 and c.category is not null
),
evaluated as (  -- the days judged: 50 rows, 2 reference days
    select u.day, u.column_name, any_value(t.total) as n, count(distinct u.ref) as reference_days
    from usable u join totals t using (day, column_name)
    where t.total >= 50
    group by all
    having count(distinct u.ref) >= 2
),
reference_counts as (
    select day, column_name, category, sum(n) as n from usable group by all
),
distributions as (
    select day, column_name, coalesce(d.n, 0) as n_day, r.n is null as unseen,
           coalesce(d.n, 0) / sum(coalesce(d.n, 0)) over w as p, coalesce(r.n, 0) / sum(coalesce(r.n, 0)) over w as q
    from (select c.* from category_counts c join evaluated using (day, column_name) where c.category is not null) d
    full join (select r.* from reference_counts r join evaluated using (day, column_name)) r
        using (day, column_name, category)
    window w as (partition by day, column_name)
)
select day, column_name, sum(n_day) as n,
       sqrt(greatest((sum(if(p > 0, p * log2(p / ((p + q) / 2)), 0))
                      + sum(if(q > 0, q * log2(q / ((p + q) / 2)), 0))) / 2, 0)) as jensen_shannon,
       sum(n_day) filter (where unseen) / sum(n_day) as new_category_share
from distributions
group by all;

-- ---------------------------------------------------------------- drift: silver flights' carriers

-- each carrier's lower quartile of departure delay minus the whole day's (carriers with 50 values)
create temp table carrier_quartiles as
with per as (
    select flight_date as day, carrier, quantile_cont(dep_delay, 0.25) as q, count(dep_delay) as n
    from silver.flights
    where flight_date between (select first_day from span) and (select last_day from span)
    group by grouping sets ((flight_date), (flight_date, carrier))
)
select s.day, s.carrier, s.q - a.q as relative
from per s join per a on a.day = s.day and a.carrier is null
where s.carrier is not null and s.n >= 50;

-- the day's relative quartile against the median of its reference days'
create temp table segment_drift as
with reference_median as (
    select r.day, c.carrier, median(c.relative) as reference, count(*) as reference_days
    from reference r join carrier_quartiles c on c.day = r.ref
    group by all
)
select c.day, c.carrier, c.relative, m.reference, m.reference_days, abs(c.relative - m.reference) as shift
from carrier_quartiles c
join judged using (day)
left join reference_median m using (day, carrier);

-- ---------------------------------------------------------------- correlation

-- Pearson's r of distance_mi and plane_seats on the day and over its reference window, from the
-- pairs' sums (pooled over the reference days)
create temp macro pearson(n, sx, sy, sxx, syy, sxy) as
    (n * sxy - sx * sy) / sqrt(nullif((n * sxx - sx * sx) * (n * syy - sy * sy), 0));

create temp table correlation as
with reference_sums as (
    select r.day, sum(g.corr_n) as n, sum(g.corr_sx) as sx, sum(g.corr_sy) as sy, sum(g.corr_sxx) as sxx,
           sum(g.corr_syy) as syy, sum(g.corr_sxy) as sxy
    from reference r join gold_features_day g on g.day = r.ref
    group by 1
)
select j.day, g.corr_n as n, r.n as n_ref,
       pearson(g.corr_n, g.corr_sx, g.corr_sy, g.corr_sxx, g.corr_syy, g.corr_sxy) as r_day,
       pearson(r.n, r.sx, r.sy, r.sxx, r.syy, r.sxy) as r_reference,
       abs(r_day - r_reference) as abs_delta
from judged j
left join gold_features_day g using (day)
left join reference_sums r using (day);
