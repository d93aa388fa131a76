-- The floor: gold.flight_features computed straight from the landing files, by hand, in one
-- DuckDB process: no Dagster, no dbt, no intermediate tables, no lineage, no checks. It applies
-- the same rules as silver (types, required values, local-date and schedule rules, key
-- de-duplication, impossible values nulled) and the same point-in-time features as gold
-- (docs/design.md#features), so its output must equal the pipeline's; the benchmark compares them
-- cell by cell. Its rolling windows subtract running totals found by ASOF joins, the method
-- gold's as_of_window macro uses on DuckDB too (sums of integers, exact in doubles).
--
-- `${LANDING}` is replaced by the landing folder. The constants are tarmac's defaults: the
-- 2-hour prediction horizon, the windows of the feature registry, silver's value bounds.

set TimeZone = 'UTC';

create temp macro na(x) as nullif(nullif(trim(x), ''), 'NA');
create temp macro hhmm_ok(x) as (x between 0 and 2400 and x % 100 < 60);
create temp macro bounded(x, lo, hi) as case when x between lo and hi then x end;
create temp macro day_of_file(f) as regexp_extract(f, '(\d{4}-\d{2}-\d{2})\.csv$', 1)::date;

create or replace table flight_features as
with flights_raw as (
    select * from read_csv('${LANDING}/flights/*.csv', all_varchar = true, header = true, filename = true)
),

flights_typed as (
    select
        day_of_file(filename) as flight_date,
        try_cast(na(year) as integer) as y, try_cast(na(month) as integer) as m, try_cast(na(day) as integer) as d,
        try_cast(na(dep_time) as integer) as dep_time_i,
        try_cast(na(sched_dep_time) as integer) as sched_i,
        try_cast(na(dep_delay) as integer) as dep_delay_i,
        try_cast(na(flight) as integer) as flight_i,
        try_cast(na(distance) as integer) as distance_i,
        try_cast(na(hour) as integer) as hour_i,
        try_cast(na(minute) as integer) as minute_i,
        try_cast(na(time_hour) as timestamptz) as time_hour_ts,
        na(carrier) as carrier_v, na(tailnum) as tailnum_v, na(origin) as origin_v, na(dest) as dest_v,
        na(dep_time) is null as cancelled,
        -- a value that is there but not of its type breaks the row
        (na(arr_time) is not null and try_cast(na(arr_time) as integer) is null)
            or (na(sched_arr_time) is not null and try_cast(na(sched_arr_time) as integer) is null)
            or (na(arr_delay) is not null and try_cast(na(arr_delay) as integer) is null)
            or (na(air_time) is not null and try_cast(na(air_time) as integer) is null) as other_bad_type,
        * exclude (filename)
    from flights_raw
),

flights as (
    select
        carrier_v || '-' || flight_i || '-' || origin_v || '-' || strftime(flight_date, '%Y%m%d') as flight_id,
        flight_date, y as year, m as month, hour_i as hour, carrier_v as carrier, origin_v as origin,
        dest_v as dest, tailnum_v as tailnum, bounded(distance_i, 1, 6000) as distance, cancelled,
        time_hour_ts + to_minutes(minute_i) as sched_dep_ts,
        case when not cancelled
            then time_hour_ts + to_minutes(minute_i + bounded(dep_delay_i, -120, 2880)) end as dep_ts,
        bounded(dep_delay_i, -120, 2880) as dep_delay
    from flights_typed
    where y is not null and m is not null and d is not null and sched_i is not null and carrier_v is not null
      and flight_i is not null and origin_v is not null and dest_v is not null and hour_i is not null
      and minute_i is not null and time_hour_ts is not null
      and not other_bad_type
      and (na(dep_time) is null or dep_time_i is not null)
      and (na(dep_delay) is null or dep_delay_i is not null)
      and (na(distance) is null or distance_i is not null)
      and try_cast(printf('%04d-%02d-%02d', y, m, d) as date) = flight_date
      and timezone('America/New_York', time_hour_ts) = try_cast(printf('%04d-%02d-%02d %02d:00:00', y, m, d, hour_i) as timestamp)
      and origin_v in ('EWR', 'JFK', 'LGA')
      and sched_i between 0 and 2359 and sched_i % 100 < 60
      and sched_i = hour_i * 100 + minute_i
    -- one row per flight; the data set has no conflicting copies (the comparison would show one)
    qualify row_number() over (partition by flight_id) = 1
),

weather_typed as (
    select
        day_of_file(filename) as obs_date, na(origin) as origin_v,
        try_cast(na(year) as integer) as y, try_cast(na(month) as integer) as m, try_cast(na(day) as integer) as d,
        try_cast(na(hour) as integer) as hour_i, try_cast(na(time_hour) as timestamptz) as obs_ts,
        try_cast(na(temp) as double) as temp_v, try_cast(na(humid) as double) as humid_v,
        try_cast(na(wind_speed) as double) as wind_speed_v, try_cast(na(precip) as double) as precip_v,
        try_cast(na(visib) as double) as visib_v,
        *
    from read_csv('${LANDING}/weather/*.csv', all_varchar = true, header = true, filename = true)
),

weather as (
    select origin_v as origin, obs_ts,
        bounded(temp_v, -60, 130) as temp, bounded(wind_speed_v, 0, 200) as wind_speed,
        bounded(visib_v, 0, 10) as visib, bounded(precip_v, 0, 10) as precip, bounded(humid_v, 0, 100) as humid
    from weather_typed
    where origin_v is not null and y is not null and m is not null and d is not null and hour_i is not null
      and obs_ts is not null
      and (na(temp) is null or temp_v is not null) and (na(humid) is null or humid_v is not null)
      and (na(wind_speed) is null or wind_speed_v is not null) and (na(precip) is null or precip_v is not null)
      and (na(visib) is null or visib_v is not null)
      and (na(dewp) is null or try_cast(na(dewp) as double) is not null)
      and (na(wind_dir) is null or try_cast(na(wind_dir) as double) is not null)
      and (na(wind_gust) is null or try_cast(na(wind_gust) as double) is not null)
      and (na(pressure) is null or try_cast(na(pressure) as double) is not null)
      and try_cast(printf('%04d-%02d-%02d', y, m, d) as date) = obs_date
      and timezone('America/New_York', obs_ts) = try_cast(printf('%04d-%02d-%02d %02d:00:00', y, m, d, hour_i) as timestamp)
      and origin_v in ('EWR', 'JFK', 'LGA')
    -- one observation per (origin, UTC hour); the data set has no conflicting copies
    qualify row_number() over (partition by origin_v, obs_ts) = 1
),

planes as (
    select na(tailnum) as tailnum, try_cast(na(year) as integer) as year, try_cast(na(seats) as integer) as seats
    from read_csv('${LANDING}/reference/planes.csv', all_varchar = true, header = true)
    where na(tailnum) is not null
    qualify row_number() over (partition by na(tailnum)) = 1
),

targets as (
    select *, sched_dep_ts - interval 2 hour as prediction_ts from flights
),

departures as (
    select origin, dest, carrier, dep_ts as ts, dep_delay::double as dep_delay from flights where dep_ts is not null
),

-- Rolling windows (p - w, p] as differences of per-key running totals: the total at p minus the
-- total at p - w, each found by an ASOF join (the latest event time at or before the instant).
dep_totals_origin as (
    select origin, ts, sum(sum(dep_delay)) over w as s, sum(count(*)) over w as n
    from departures group by origin, ts window w as (partition by origin order by ts)
),
dep_totals_carrier as (
    select carrier, ts, sum(sum(dep_delay)) over w as s, sum(count(*)) over w as n
    from departures group by carrier, ts window w as (partition by carrier order by ts)
),
dep_totals_route as (
    select origin, dest, ts, sum(sum((dep_delay >= 15)::double)) over w as s, sum(count(*)) over w as n
    from departures group by origin, dest, ts window w as (partition by origin, dest order by ts)
),
cx_totals as (
    select origin, sched_dep_ts as ts, sum(count(*)) over (partition by origin order by sched_dep_ts) as n
    from flights where cancelled group by origin, sched_dep_ts
),

origin_1h as (
    select t.flight_id,
        case when coalesce(a.n, 0) - coalesce(b.n, 0) > 0
             then (a.s - coalesce(b.s, 0)) / (a.n - coalesce(b.n, 0)) end as origin_dep_delay_avg_1h,
        coalesce(a.n, 0) - coalesce(b.n, 0) as origin_departures_1h
    from targets t
    asof left join dep_totals_origin a on t.origin = a.origin and t.prediction_ts >= a.ts
    asof left join dep_totals_origin b on t.origin = b.origin and t.prediction_ts - interval 1 hour >= b.ts
),

cancelled_3h as (
    select t.flight_id, coalesce(a.n, 0) - coalesce(b.n, 0) as origin_cancelled_3h
    from targets t
    asof left join cx_totals a on t.origin = a.origin and t.prediction_ts >= a.ts
    asof left join cx_totals b on t.origin = b.origin and t.prediction_ts - interval 3 hour >= b.ts
),

carrier_24h as (
    select t.flight_id,
        case when coalesce(a.n, 0) - coalesce(b.n, 0) > 0
             then (a.s - coalesce(b.s, 0)) / (a.n - coalesce(b.n, 0)) end as carrier_dep_delay_avg_24h
    from targets t
    asof left join dep_totals_carrier a on t.carrier = a.carrier and t.prediction_ts >= a.ts
    asof left join dep_totals_carrier b on t.carrier = b.carrier and t.prediction_ts - interval 24 hour >= b.ts
),

route_7d as (
    select t.flight_id,
        case when coalesce(a.n, 0) - coalesce(b.n, 0) > 0
             then (a.s - coalesce(b.s, 0)) / (a.n - coalesce(b.n, 0)) end as route_dep_delay15_rate_7d
    from targets t
    asof left join dep_totals_route a on t.origin = a.origin and t.dest = a.dest and t.prediction_ts >= a.ts
    asof left join dep_totals_route b on t.origin = b.origin and t.dest = b.dest and t.prediction_ts - interval 7 day >= b.ts
),

latest_weather as (
    -- the latest observation at or before p, if it is at most 3 hours old
    select t.flight_id, w.*, w.obs_ts >= t.prediction_ts - interval 3 hour as fresh
    from targets t asof left join weather w on t.origin = w.origin and t.prediction_ts >= w.obs_ts
)

select
    t.flight_id, t.flight_date, t.sched_dep_ts, t.prediction_ts, t.carrier, t.origin, t.dest,
    t.distance as distance_mi, t.hour as dep_hour_local, isodow(t.flight_date) as day_of_week, t.month,
    o.origin_dep_delay_avg_1h, o.origin_departures_1h, c.origin_cancelled_3h,
    k.carrier_dep_delay_avg_24h, r.route_dep_delay15_rate_7d,
    case when fresh then lw.temp end as temp_f,
    case when fresh then lw.wind_speed end as wind_speed_mph,
    case when fresh then lw.visib end as visib_mi,
    case when fresh then lw.precip end as precip_in,
    case when fresh then lw.humid end as humid,
    t.year - p.year as plane_age_years,
    p.seats as plane_seats
from targets t
join origin_1h o using (flight_id)
join cancelled_3h c using (flight_id)
join carrier_24h k using (flight_id)
join route_7d r using (flight_id)
join latest_weather lw using (flight_id)
left join planes p on p.tailnum = t.tailnum;
