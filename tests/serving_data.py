"""What the serving tests share: a handful of events whose features are known by hand, a flight
and an older one in the online store, and stand-ins for the champion model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tarmac.features.registry import feature_versions
from tarmac.online.events import Event, from_us, to_us
from tarmac.online.retrieval import FLIGHT, PLANE
from tarmac.online.runner import run_speed_layer

MIN = 60_000_000
SCHED = pd.Timestamp("2013-06-09 16:30", tz="UTC")  # 12:30 in New York
P = to_us(SCHED) - 120 * MIN  # prediction_ts at the default 2 h horizon
FLIGHT_ID = "AA-100-LGA-20130609"

EVENTS = [
    Event("departure", P - 90 * MIN, "LGA", "ORD", "AA", dep_delay=40.0),
    Event("weather", P - 50 * MIN, "LGA", temp=70.0, wind_speed=11.5, visib=10.0, precip=0.0, humid=60.0),
    Event("departure", P - 30 * MIN, "LGA", "ORD", "AA", dep_delay=10.0),
    Event("cancellation", P - 10 * MIN, "LGA", "BOS", "DL"),
    Event("departure", P, "LGA", "ORD", "AA", dep_delay=20.0),  # at p: inside (p - w, p]
    Event("departure", P + 5 * MIN, "LGA", "ORD", "AA", dep_delay=90.0),  # after p: never in p's features
]
# by hand, as of p
EXPECTED = {
    "carrier": "AA", "origin": "LGA", "dest": "ORD", "distance_mi": 733, "dep_hour_local": 12,
    "day_of_week": 7, "month": 6,
    "origin_dep_delay_avg_1h": 15.0, "origin_departures_1h": 2, "origin_cancelled_3h": 1,
    "carrier_dep_delay_avg_24h": 70.0 / 3, "route_dep_delay15_rate_7d": 2 / 3,
    "temp_f": 70.0, "wind_speed_mph": 11.5, "visib_mi": 10.0, "precip_in": 0.0, "humid": 60.0,
    "plane_age_years": 10, "plane_seats": 150,
}  # fmt: skip
RECORD = {
    "flight_id": FLIGHT_ID, "flight_date": "2013-06-09", "year": 2013, "month": 6, "hour": 12, "carrier": "AA",
    "flight": 100, "origin": "LGA", "dest": "ORD", "tailnum": "N100AA", "distance": 733,
    "sched_dep_ts": SCHED.isoformat(), "prediction_ts": from_us(P).isoformat(),
}  # fmt: skip
START, END = P - 8 * 24 * 60 * MIN, P + 60 * MIN  # values are exact from START + 7 days on


def fill_store(store):
    """EVENTS' windows, the plane, the flight and an older one (whose batch vector is all it has)."""
    run_speed_layer([EVENTS], store, start_us=START, end_us=END)
    store.put_records(PLANE, {"N100AA": {"year": 2003, "seats": 150}}, group="all")
    old = {**RECORD, "flight_id": "AA-100-LGA-20130531", "flight_date": "2013-05-31",
           "prediction_ts": "2013-05-31T14:30:00+00:00", "batch": {"origin_departures_1h": 7}}
    store.put_records(FLIGHT, {FLIGHT_ID: RECORD}, group="2013-06-09")
    store.put_records(FLIGHT, {old["flight_id"]: old}, group="2013-05-31")
    return store


class RecordingModel:
    """A stand-in champion: answers 0.75 and keeps what it was given."""

    def __init__(self):
        self.inputs = []

    def predict_proba(self, frame):
        self.inputs.append(frame)
        return np.tile([0.25, 0.75], (len(frame), 1))


class StubChampion:
    """Version 3 of the model holds the alias; version 2 was trained on an older version of one
    feature, which the store no longer holds."""

    def __init__(self, model):
        self.model = model

    def get(self):
        return "tarmac-flight-delay", "3", self.model

    def feature_sets(self):
        current = feature_versions()
        older = {**current, "origin_dep_delay_avg_1h": current["origin_dep_delay_avg_1h"] - 1}
        return "tarmac-flight-delay", {"2": older, "3": current}
