"""A tiny hand-built landing zone whose every feature is known by hand: the features
(docs/design.md#features) of gold.flight_features, window edges included, are literals in EXPECTED.

The scenario (local times, EDT = UTC-4; D2 = 2013-06-02 Sun, D8 = 2013-06-08 Sat, D9 = 2013-06-09 Sun;
D3..D7 are delivered as header-only files). A departure is an event at dep = sched + dep_delay, a
cancellation an event at sched. Targets (rows checked column by column) are marked with *.

    flight            route     sched      delay  event       role
    UA-501  (R0)      LGA-ORD   D2 10:00   30     D2 10:30    = p(T) - 7 d: outside T's route window
    UA-502  (R1)      LGA-ORD   D2 10:16   15     D2 10:31    inside T's route window, delayed (15)
    AA-402  (A2)      EWR-DFW   D8 10:00   30     D8 10:30    = p(T) - 24 h: outside T's carrier window
    AA-403  (A3)      EWR-DFW   D8 10:30   1      D8 10:31    inside T's carrier window
    B6-706            JFK-BOS   D8 06:00   25     D8 06:25    route JFK-BOS delayed
  * UA-503  (R2)      LGA-ORD   D8 18:00   14     D8 18:14    route LGA-ORD not delayed (14); D8 target
    9E-705            LGA-DCA   D8 20:00   45     D8 20:45    9E carrier history
    EV-904            JFK-PWM   D8 22:00   cx     D8 22:00    cancellation inside M's 3 h
    DL-902            JFK-ATL   D8 23:00   45     D8 23:45    = p(M) - 1 h: outside M's 1 h
    B6-901            JFK-SJU   D8 23:50   20     D9 00:10    departs after local midnight
  * EV-903  (M)       JFK-PWM   D9 02:45   cx     D9 02:45    cancelled target, p across midnight, NA tail
    UA-206  (R3)      LGA-ORD   D9 07:00   0      D9 07:00    route, not delayed
    DL-301  (C1)      LGA-ATL   D9 07:30   cx     D9 07:30    = p(T) - 3 h: outside T's 3 h
    UA-302  (C4)      LGA-ORD   D9 07:31   cx     D9 07:31    inside T's 3 h; a cancelled route flight
    AA-401  (A1)      JFK-MIA   D9 07:50   10     D9 08:00    same carrier as T, other origin
    DL-202  (E2)      LGA-ATL   D9 09:00   30     D9 09:30    = p(T) - 1 h: outside T's 1 h
    9E-703            JFK-BOS   D9 09:00   cx     D9 09:00    = p(W3) - 3 h; JFK, so not T's either
    UA-203  (E3)      LGA-BOS   D9 09:25   6      D9 09:31    = p(T) - 1 h + 1 min: inside
    B6-205  (E5)      LGA-BOS   D9 09:50   -4     D9 09:46    negative delay inside T's 1 h
    DL-201  (E1)      LGA-ATL   D9 10:20   10     D9 10:30    = p(T): inside
    UA-204  (E4)      LGA-ORD   D9 10:25   20     D9 10:45    scheduled before p(T), departs after
  * DL-303  (C2)      LGA-ATL   D9 10:30   cx     D9 10:30    = p(T): inside T's 3 h; cancelled target
    DL-304  (C3)      LGA-ATL   D9 10:45   cx     D9 10:45    after p(T)
    9E-702            JFK-BOS   D9 11:30   0      D9 11:30    inside W3's 1 h
    9E-704            JFK-BOS   D9 12:00   cx     D9 12:00    = p(W3): inside W3's 3 h
  * AA-100  (T)       LGA-ORD   D9 12:30   5      D9 12:35    main target, p = D9 10:30
    UA-802            EWR-DFW   D9 12:30   30     D9 13:00    = p(W4): inside W4's 1 h
  * 9E-701  (W3)      JFK-BOS   D9 14:00   -2     D9 13:58    latest weather exactly 3 h old; unknown tail
  * UA-801  (W4)      EWR-ORD   D9 15:00   3      D9 15:03    latest weather 4 h old; plane built 2013
  * B6-601  (WZ)      LGA-BOS   D9 16:00   0      D9 16:00    weather at p has wind 1048; plane year NA; diverted

Weather (local hour -> used by): JFK D8 23:00 -> M; JFK D9 01:00 (after p(M)); JFK D9 09:00 -> W3
(exactly 3 h); JFK D9 13:00; EWR D9 09:00 -> W4 (4 h: NULL); EWR D9 14:00; LGA D9 10:00 -> T;
LGA D9 11:00; LGA D9 14:00 -> WZ (obs at exactly p; wind 1048 nulled); LGA D9 15:00.

Expected feature rows per target (and the arithmetic) are literals in EXPECTED below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

FIRST_DAY, LAST_DAY = "2013-06-02", "2013-06-09"

FLIGHTS_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,"
    "carrier,flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
WEATHER_HEADER = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour"
)
EDT = timedelta(hours=4)  # June in New York: UTC = local + 4 h

CX = None  # cancelled: no dep_time, dep_delay, arr_time, arr_delay, air_time
DIVERTED = "diverted"  # departed, but no arrival

# (day, carrier, flight, origin, dest, sched_dep_time, dep_delay, arr_delay, tailnum, distance)
FLIGHTS = [
    ("2013-06-02", "UA", 501, "LGA", "ORD", 1000, 30, 25, "N300UA", 733),  # R0
    ("2013-06-02", "UA", 502, "LGA", "ORD", 1016, 15, 10, "N300UA", 733),  # R1
    ("2013-06-08", "AA", 402, "EWR", "DFW", 1000, 30, 28, "N100AA", 1372),  # A2
    ("2013-06-08", "AA", 403, "EWR", "DFW", 1030, 1, -3, "N100AA", 1372),  # A3
    ("2013-06-08", "B6", 706, "JFK", "BOS", 600, 25, 30, "N200NA", 187),
    ("2013-06-08", "UA", 503, "LGA", "ORD", 1800, 14, 10, "N300UA", 733),  # R2 (target)
    ("2013-06-08", "9E", 705, "LGA", "DCA", 2000, 45, 40, "N999ZZ", 214),
    ("2013-06-08", "EV", 904, "JFK", "PWM", 2200, CX, CX, "NA", 273),
    ("2013-06-08", "DL", 902, "JFK", "ATL", 2300, 45, 50, "N100AA", 760),
    ("2013-06-08", "B6", 901, "JFK", "SJU", 2350, 20, 15, "N200NA", 1598),
    ("2013-06-09", "EV", 903, "JFK", "PWM", 245, CX, CX, "NA", 273),  # M (target)
    ("2013-06-09", "UA", 206, "LGA", "ORD", 700, 0, -10, "N300UA", 733),  # R3
    ("2013-06-09", "DL", 301, "LGA", "ATL", 730, CX, CX, "N100AA", 762),  # C1
    ("2013-06-09", "UA", 302, "LGA", "ORD", 731, CX, CX, "N300UA", 733),  # C4
    ("2013-06-09", "AA", 401, "JFK", "MIA", 750, 10, 5, "N100AA", 1089),  # A1
    ("2013-06-09", "DL", 202, "LGA", "ATL", 900, 30, 25, "N100AA", 762),  # E2
    ("2013-06-09", "9E", 703, "JFK", "BOS", 900, CX, CX, "N999ZZ", 187),
    ("2013-06-09", "UA", 203, "LGA", "BOS", 925, 6, 0, "N300UA", 184),  # E3
    ("2013-06-09", "B6", 205, "LGA", "BOS", 950, -4, -10, "N200NA", 184),  # E5
    ("2013-06-09", "DL", 201, "LGA", "ATL", 1020, 10, 15, "N100AA", 762),  # E1
    ("2013-06-09", "UA", 204, "LGA", "ORD", 1025, 20, 18, "N300UA", 733),  # E4
    ("2013-06-09", "DL", 303, "LGA", "ATL", 1030, CX, CX, "N100AA", 762),  # C2 (target)
    ("2013-06-09", "DL", 304, "LGA", "ATL", 1045, CX, CX, "N100AA", 762),  # C3
    ("2013-06-09", "9E", 702, "JFK", "BOS", 1130, 0, 2, "N999ZZ", 187),
    ("2013-06-09", "9E", 704, "JFK", "BOS", 1200, CX, CX, "N999ZZ", 187),
    ("2013-06-09", "AA", 100, "LGA", "ORD", 1230, 5, 20, "N100AA", 733),  # T (target)
    ("2013-06-09", "UA", 802, "EWR", "DFW", 1230, 30, 33, "N300UA", 1372),
    ("2013-06-09", "9E", 701, "JFK", "BOS", 1400, -2, 14, "N999ZZ", 187),  # W3 (target)
    ("2013-06-09", "UA", 801, "EWR", "ORD", 1500, 3, -5, "N300UA", 719),  # W4 (target)
    ("2013-06-09", "B6", 601, "LGA", "BOS", 1600, 0, DIVERTED, "N200NA", 184),  # WZ (target)
]

# (origin, day, local hour, temp, humid, wind_speed, precip, visib)
WEATHER = [
    ("JFK", "2013-06-08", 23, 65.1, 80.25, 3.45234, 0.0, 10.0),  # -> M
    ("JFK", "2013-06-09", 1, 64.4, 81.0, 4.60312, 0.0, 10.0),
    ("JFK", "2013-06-09", 9, 68.2, 50.5, 5.75390, 0.02, 8.0),  # -> W3 (exactly 3 h)
    ("JFK", "2013-06-09", 13, 72.3, 45.0, 6.90468, 0.0, 10.0),
    ("EWR", "2013-06-09", 9, 69.0, 52.0, 8.05546, 0.0, 10.0),  # 4 h before p(W4)
    ("EWR", "2013-06-09", 14, 73.9, 44.0, 9.20624, 0.0, 10.0),
    ("LGA", "2013-06-09", 10, 70.1, 60.3, 11.5078, 0.0, 10.0),  # -> T
    ("LGA", "2013-06-09", 11, 71.6, 58.0, 12.65858, 0.0, 10.0),
    ("LGA", "2013-06-09", 14, 75.5, 55.5, 1048, 0.01, 9.0),  # -> WZ, wind nulled in silver
    ("LGA", "2013-06-09", 15, 76.0, 54.0, 13.80936, 0.0, 10.0),
]

PLANES = [
    "tailnum,year,type,manufacturer,model,engines,seats,speed,engine",
    "N100AA,2003,Fixed wing multi engine,BOEING,737-823,2,150,NA,Turbo-fan",
    "N200NA,NA,Fixed wing multi engine,EMBRAER,EMB-145XR,2,20,NA,Turbo-fan",
    "N300UA,2013,Fixed wing multi engine,AIRBUS,A320-232,2,200,NA,Turbo-fan",
]
AIRPORTS = [
    "faa,name,lat,lon,alt,tz,dst,tzone",
    "EWR,Newark Liberty Intl,40.6925,-74.168667,18,-5,A,America/New_York",
    "JFK,John F Kennedy Intl,40.639751,-73.778925,13,-5,A,America/New_York",
    "LGA,La Guardia,40.777245,-73.872608,22,-5,A,America/New_York",
    "ORD,Chicago Ohare Intl,41.978603,-87.904842,668,-6,A,America/Chicago",
    "ATL,Hartsfield Jackson Atlanta Intl,33.636719,-84.428067,1026,-5,A,America/New_York",
    "BOS,General Edward Lawrence Logan Intl,42.364347,-71.005181,19,-5,A,America/New_York",
]
AIRLINES = [
    "carrier,name",
    "9E,Endeavor Air Inc.",
    "AA,American Airlines Inc.",
    "B6,JetBlue Airways",
    "DL,Delta Air Lines Inc.",
    "EV,ExpressJet Airlines Inc.",
    "UA,United Air Lines Inc.",
]


def _hhmm(minutes: int) -> int:
    minutes %= 24 * 60
    return minutes // 60 * 100 + minutes % 60


def _utc_hour(day: str, hour: int) -> str:
    d = date.fromisoformat(day)
    return (datetime(d.year, d.month, d.day, hour) + EDT).strftime("%Y-%m-%dT%H:00:00Z")


def _na(value: object) -> str:
    return "NA" if value is None else str(value)


def _flight_line(day, carrier, number, origin, dest, sched, dep_delay, arr_delay, tailnum, distance) -> str:
    d = date.fromisoformat(day)
    hour, minute = divmod(sched, 100)
    sched_min = hour * 60 + minute
    sched_arr_min = sched_min + 120
    departed = dep_delay is not None
    arrived = departed and arr_delay is not DIVERTED
    fields = [
        d.year, d.month, d.day,
        _hhmm(sched_min + dep_delay) if departed else None,
        sched,
        dep_delay,
        _hhmm(sched_arr_min + arr_delay) if arrived else None,
        _hhmm(sched_arr_min),
        arr_delay if arrived else None,
        carrier, number, tailnum, origin, dest,
        100 if arrived else None,
        distance, hour, minute, _utc_hour(day, hour),
    ]  # fmt: skip
    return ",".join(_na(f) for f in fields)


def _weather_line(origin, day, hour, temp, humid, wind_speed, precip, visib) -> str:
    d = date.fromisoformat(day)
    fields = [origin, d.year, d.month, d.day, hour, temp, 55.04, humid, 200, wind_speed, None, precip,
              1015.2, visib, _utc_hour(day, hour)]  # fmt: skip
    return ",".join(_na(f) for f in fields)


def _write(path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def land_scenario(paths) -> None:
    day = date.fromisoformat(FIRST_DAY)
    while day <= date.fromisoformat(LAST_DAY):
        iso = day.isoformat()
        _write(paths.landing_day_file("flights", iso),
               [FLIGHTS_HEADER, *(_flight_line(*f) for f in FLIGHTS if f[0] == iso)])  # fmt: skip
        _write(paths.landing_day_file("weather", iso),
               [WEATHER_HEADER, *(_weather_line(*w) for w in WEATHER if w[1] == iso)])  # fmt: skip
        day += timedelta(days=1)
    _write(paths.reference_file("planes"), PLANES)
    _write(paths.reference_file("airports"), AIRPORTS)
    _write(paths.reference_file("airlines"), AIRLINES)


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2013, 6, day, hour, minute, tzinfo=UTC)


NO_WEATHER = {"temp_f": None, "wind_speed_mph": None, "visib_mi": None, "precip_in": None, "humid": None}

EXPECTED = {
    # T: AA LGA-ORD sched D9 12:30 local = 16:30Z; p = 14:30Z = D9 10:30 local.
    "AA-100-LGA-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 16, 30),  # time_hour 16:00Z + 30 min
        "prediction_ts": _utc(9, 14, 30),
        "carrier": "AA", "origin": "LGA", "dest": "ORD", "distance_mi": 733,
        "dep_hour_local": 12, "day_of_week": 7, "month": 6,  # 2013-06-09 is a Sunday
        # LGA departures in (09:30, 10:30]: E3 09:31 (6), E5 09:46 (-4), E1 10:30 (10);
        # not E2 at 09:30 (30) nor E4 at 10:45 (20): (6 - 4 + 10) / 3 = 4
        "origin_dep_delay_avg_1h": 4.0,
        "origin_departures_1h": 3,
        # LGA cancellations in (07:30, 10:30]: C4 07:31, C2 10:30; not C1 07:30, C3 10:45; not JFK's 9E-703
        "origin_cancelled_3h": 2,
        # AA departures in (D8 10:30, D9 10:30]: A3 D8 10:31 (1), A1 JFK D9 08:00 (10); not A2 D8 10:30 (30)
        "carrier_dep_delay_avg_24h": 5.5,  # (1 + 10) / 2
        # LGA-ORD departures in (D2 10:30, D9 10:30]: R1 (15: yes), R2 (14: no), R3 (0: no);
        # not R0 at D2 10:30, not E4 at 10:45, cancelled C4 is no departure
        "route_dep_delay15_rate_7d": 1 / 3,
        # latest LGA observation <= 10:30 is 10:00 (30 min old); 11:00 is after p
        "temp_f": 70.1, "wind_speed_mph": 11.5078, "visib_mi": 10.0, "precip_in": 0.0, "humid": 60.3,
        "plane_age_years": 10, "plane_seats": 150,  # N100AA: 2013 - 2003
    },
    # WZ: B6 LGA-BOS sched D9 16:00 = 20:00Z; p = 18:00Z = D9 14:00 local.
    "B6-601-LGA-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 20),
        "prediction_ts": _utc(9, 18),
        "carrier": "B6", "origin": "LGA", "dest": "BOS", "distance_mi": 184,
        "dep_hour_local": 16, "day_of_week": 7, "month": 6,
        # LGA departures in (13:00, 14:00]: none (T departed 12:35)
        "origin_dep_delay_avg_1h": None,
        "origin_departures_1h": 0,
        "origin_cancelled_3h": 0,  # LGA cancellations in (11:00, 14:00]: none
        # B6 departures in (D8 14:00, D9 14:00]: B6-901 JFK D9 00:10 (20), E5 D9 09:46 (-4); B6-706 D8 06:25 is too old
        "carrier_dep_delay_avg_24h": 8.0,  # (20 - 4) / 2
        "route_dep_delay15_rate_7d": 0.0,  # LGA-BOS: E3 (6), E5 (-4): 0 of 2
        # the LGA observation at exactly p (14:00) is used; its wind 1048 was nulled in silver
        "temp_f": 75.5, "wind_speed_mph": None, "visib_mi": 9.0, "precip_in": 0.01, "humid": 55.5,
        "plane_age_years": None, "plane_seats": 20,  # N200NA has year NA
    },
    # W3: 9E JFK-BOS sched D9 14:00 = 18:00Z; p = 16:00Z = D9 12:00 local.
    "9E-701-JFK-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 18),
        "prediction_ts": _utc(9, 16),
        "carrier": "9E", "origin": "JFK", "dest": "BOS", "distance_mi": 187,
        "dep_hour_local": 14, "day_of_week": 7, "month": 6,
        "origin_dep_delay_avg_1h": 0.0,  # JFK departures in (11:00, 12:00]: 9E-702 11:30 (0)
        "origin_departures_1h": 1,
        # JFK cancellations in (09:00, 12:00]: 9E-704 12:00; not 9E-703 at 09:00
        "origin_cancelled_3h": 1,
        # 9E departures in (D8 12:00, D9 12:00]: 9E-705 LGA D8 20:45 (45), 9E-702 D9 11:30 (0)
        "carrier_dep_delay_avg_24h": 22.5,  # (45 + 0) / 2
        # JFK-BOS departures in (D2 12:00, D9 12:00]: B6-706 (25: yes), 9E-702 (0: no); cancellations don't count
        "route_dep_delay15_rate_7d": 0.5,
        # latest JFK observation <= 12:00 is 09:00: exactly 3 h old, kept
        "temp_f": 68.2, "wind_speed_mph": 5.75390, "visib_mi": 8.0, "precip_in": 0.02, "humid": 50.5,
        "plane_age_years": None, "plane_seats": None,  # N999ZZ is not in planes
    },
    # W4: UA EWR-ORD sched D9 15:00 = 19:00Z; p = 17:00Z = D9 13:00 local.
    "UA-801-EWR-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 19),
        "prediction_ts": _utc(9, 17),
        "carrier": "UA", "origin": "EWR", "dest": "ORD", "distance_mi": 719,
        "dep_hour_local": 15, "day_of_week": 7, "month": 6,
        "origin_dep_delay_avg_1h": 30.0,  # EWR departures in (12:00, 13:00]: UA-802 at exactly 13:00 (30)
        "origin_departures_1h": 1,
        "origin_cancelled_3h": 0,
        # UA departures in (D8 13:00, D9 13:00]: R2 D8 18:14 (14), R3 07:00 (0), E3 09:31 (6),
        # E4 10:45 (20), UA-802 13:00 (30); R0/R1 are on D2
        "carrier_dep_delay_avg_24h": 14.0,  # 70 / 5
        "route_dep_delay15_rate_7d": None,  # no EWR-ORD departures before
        # latest EWR observation <= 13:00 is 09:00: 4 h old, so no weather (not stale values)
        **NO_WEATHER,
        "plane_age_years": 0, "plane_seats": 200,  # N300UA: 2013 - 2013
    },
    # M: EV JFK-PWM sched D9 02:45 = 06:45Z, cancelled; p = 04:45Z = D9 00:45 local (history on D8).
    "EV-903-JFK-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 6, 45),  # time_hour 06:00Z + 45 min
        "prediction_ts": _utc(9, 4, 45),
        "carrier": "EV", "origin": "JFK", "dest": "PWM", "distance_mi": 273,
        "dep_hour_local": 2, "day_of_week": 7, "month": 6,
        # JFK departures in (D8 23:45, D9 00:45]: B6-901 D9 00:10 (20); not DL-902 at D8 23:45
        "origin_dep_delay_avg_1h": 20.0,
        "origin_departures_1h": 1,
        "origin_cancelled_3h": 1,  # JFK cancellations in (D8 21:45, D9 00:45]: EV-904 D8 22:00
        "carrier_dep_delay_avg_24h": None,  # EV never departed (both flights cancelled)
        "route_dep_delay15_rate_7d": None,  # JFK-PWM: only a cancellation
        # latest JFK observation <= D9 00:45 is D8 23:00 (1 h 45 min old, previous day's file)
        "temp_f": 65.1, "wind_speed_mph": 3.45234, "visib_mi": 10.0, "precip_in": 0.0, "humid": 80.25,
        "plane_age_years": None, "plane_seats": None,  # tailnum NA
    },
    # C2: DL LGA-ATL sched D9 10:30 = 14:30Z, cancelled; p = 12:30Z = D9 08:30 local.
    "DL-303-LGA-20130609": {
        "flight_date": date(2013, 6, 9),
        "sched_dep_ts": _utc(9, 14, 30),
        "prediction_ts": _utc(9, 12, 30),
        "carrier": "DL", "origin": "LGA", "dest": "ATL", "distance_mi": 762,
        "dep_hour_local": 10, "day_of_week": 7, "month": 6,
        "origin_dep_delay_avg_1h": None,  # LGA departures in (07:30, 08:30]: none (R3 at 07:00)
        "origin_departures_1h": 0,
        "origin_cancelled_3h": 2,  # LGA cancellations in (05:30, 08:30]: C1 07:30, C4 07:31
        "carrier_dep_delay_avg_24h": 45.0,  # DL departures in (D8 08:30, D9 08:30]: DL-902 D8 23:45 (45)
        "route_dep_delay15_rate_7d": None,  # LGA-ATL departures E2, E1 are after p
        **NO_WEATHER,  # no LGA observation at or before 08:30
        "plane_age_years": 10, "plane_seats": 150,
    },
    # R2: UA LGA-ORD sched D8 18:00 = 22:00Z; p = 20:00Z = D8 16:00 local.
    "UA-503-LGA-20130608": {
        "flight_date": date(2013, 6, 8),
        "sched_dep_ts": _utc(8, 22),
        "prediction_ts": _utc(8, 20),
        "carrier": "UA", "origin": "LGA", "dest": "ORD", "distance_mi": 733,
        "dep_hour_local": 18, "day_of_week": 6, "month": 6,  # 2013-06-08 is a Saturday
        "origin_dep_delay_avg_1h": None,
        "origin_departures_1h": 0,
        "origin_cancelled_3h": 0,
        "carrier_dep_delay_avg_24h": None,  # no UA departure in (D7 16:00, D8 16:00]
        "route_dep_delay15_rate_7d": 1.0,  # LGA-ORD in (D1 16:00, D8 16:00]: R0 (30), R1 (15): 2 of 2
        **NO_WEATHER,  # no LGA observation on D7 or D8
        "plane_age_years": 0, "plane_seats": 200,
    },
}  # fmt: skip

FLOAT_COLUMNS = {
    "origin_dep_delay_avg_1h", "carrier_dep_delay_avg_24h", "route_dep_delay15_rate_7d",
    "temp_f", "wind_speed_mph", "visib_mi", "precip_in", "humid",
}  # fmt: skip

# Training labels: is_delayed = arr_delay >= 15; cancelled (8) and diverted (B6-601) flights are absent.
EXPECTED_LABELS = {
    "UA-501-LGA-20130602": True,  # 25
    "UA-502-LGA-20130602": False,  # 10
    "AA-402-EWR-20130608": True,  # 28
    "AA-403-EWR-20130608": False,  # -3
    "B6-706-JFK-20130608": True,  # 30
    "UA-503-LGA-20130608": False,  # 10
    "9E-705-LGA-20130608": True,  # 40
    "DL-902-JFK-20130608": True,  # 50
    "B6-901-JFK-20130608": True,  # 15: the edge is delayed
    "UA-206-LGA-20130609": False,  # -10
    "AA-401-JFK-20130609": False,  # 5
    "DL-202-LGA-20130609": True,  # 25
    "UA-203-LGA-20130609": False,  # 0
    "B6-205-LGA-20130609": False,  # -10
    "DL-201-LGA-20130609": True,  # 15
    "UA-204-LGA-20130609": True,  # 18
    "9E-702-JFK-20130609": False,  # 2
    "AA-100-LGA-20130609": True,  # 20
    "UA-802-EWR-20130609": True,  # 33
    "9E-701-JFK-20130609": False,  # 14: just under
    "UA-801-EWR-20130609": False,  # -5
}
