"""The serving API's published contract: what a request may hold, what each answer holds, and the
one shape of every error. The OpenAPI document (`/openapi.json`) is generated from these models,
so what it states is what the endpoints enforce: a value the schema admits is never refused for
its form, and one it does not admit is refused with a 4xx before anything reads the store.

Times are RFC 3339 instants with their offset (`Z` or `±hh:mm`), written with a year from 1970 to
2099 and at most microseconds: the schema states both as a pattern beside `format: date-time`.
"""

from __future__ import annotations

import enum
import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

from tarmac.features.registry import feature_registry
from tarmac.online.events import KEY_PATTERNS, KINDS, event_shape

FLIGHT_ID_PATTERN = r"^[A-Z0-9]{2}-[0-9]{1,4}-[A-Z]{3}-[0-9]{8}$"
FLIGHT_ID_FORM = "carrier-flight-origin-YYYYMMDD, e.g. UA-1545-EWR-20130101"
INSTANT_PATTERN = (
    r"^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
INSTANT_FORM = "an RFC 3339 instant with its offset and a year from 1970 to 2099, e.g. 2013-06-09T10:30:00-04:00"
MAX_BATCH = 1000  # flights per POST /features or POST /predict (the body limit applies too)
_INSTANT = re.compile(INSTANT_PATTERN, re.ASCII)


def parse_instant(text: str, field: str) -> datetime:
    """`text` as a tz-aware datetime; ValueError naming `field` when it is not an accepted instant."""
    if not isinstance(text, str) or not _INSTANT.fullmatch(text):
        raise ValueError(f"{field} {text!r} is not {INSTANT_FORM}")
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:  # a day the month does not have
        raise ValueError(f"{field} {text!r} is not a date and time: {error}") from None


def _json_integer(value: Any) -> int:
    """A JSON integer: 100 or 100.0 (JSON Schema counts a number with no fraction as an integer),
    never a string or a boolean, which pydantic's lax mode would turn into one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Input should be a valid integer (got {value!r})")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"Input should be a valid integer, without a fraction (got {value!r})")
        return int(value)
    return value


def _json_number(value: Any) -> float:
    """A finite JSON number; never a string or a boolean (pydantic's lax mode takes both)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"Input should be a finite number (got {value!r})")
    return float(value)


JsonNumber = Annotated[float, BeforeValidator(_json_number)]


def json_integer(low: int, high: int):
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_json_integer)]


def _instant(field: str):
    def check(value: Any) -> datetime:
        return parse_instant(value, field)

    return check


def _instant_type(field: str, description: str, example: str):
    """A datetime field that takes only the accepted strings (no numbers, no other layouts)."""
    return Annotated[
        datetime,
        BeforeValidator(_instant(field)),
        WithJsonSchema({"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN,
                        "description": description, "examples": [example]}),
    ]


FlightId = Annotated[str, Field(pattern=FLIGHT_ID_PATTERN, description=f"A flight: {FLIGHT_ID_FORM}.",
                                examples=["AA-100-LGA-20130609"])]
AsOf = _instant_type("as_of", "Read the features as of this instant (default: the flight's prediction time).",
                     "2013-06-09T10:30:00-04:00")
Origin = enum.StrEnum("Origin", {code: code for code in feature_registry()["origin"].isin or ()})
Origin.__doc__ = "The origins the model knows (the feature registry's values of `origin`)."
FeatureValue = int | float | str | None


class Problem(BaseModel):
    """Every error, 4xx and 5xx alike: what went wrong and what to do, one line in `detail`."""

    status: int = Field(description="The HTTP status code.", examples=[404])
    title: str = Field(description="The status's reason phrase.", examples=["Not Found"])
    detail: str = Field(description="What was wrong, and what to do about it.")
    request_id: str = Field(description="The request's id (the X-Request-ID header), as the server's log names it.")
    errors: list[FieldError] = Field(default=[], description="For 422: each invalid part of the request.")


class FieldError(BaseModel):
    location: str = Field(description="Where: path, query or body, and the field.", examples=["body.origin"])
    message: str
    type: str = Field(description="The kind of fault, e.g. string_pattern_mismatch, missing, enum.")


class FeatureVector(BaseModel):
    """A flight's features as of an instant, and where they came from."""

    flight_id: str
    as_of: str = Field(description="The instant the features are as of (UTC).")
    prediction_ts: str = Field(description="The flight's prediction time: sched_dep_ts less the horizon (UTC).")
    source: Literal["stream", "batch"] = Field(
        description="stream: the speed layer's histories as of `as_of`; batch: gold's vector for the prediction "
                    "time, for a flight older than the stream's history.")
    service: str = Field(description="The feature service these features are the set of.")
    features: dict[str, FeatureValue] = Field(description="Feature name -> value, in the service's order.")
    feature_versions: dict[str, int] = Field(description="Feature name -> its version in the feature registry.")


class FeaturesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flight_id: FlightId
    as_of: AsOf | None = None


class FeaturesBatchRequest(BaseModel):
    """Many flights in one round trip; each one answered as `GET /features/{flight_id}` answers it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"flights": [
        {"flight_id": "AA-100-LGA-20130609"},
        {"flight_id": "UA-1545-EWR-20130609", "as_of": "2013-06-09T08:00:00-04:00"}]}]})

    flights: list[FeaturesQuery] = Field(min_length=1, max_length=MAX_BATCH,
                                         description="The flights, each with an optional as_of.")
    service: str | None = Field(default=None, description="The feature service (default: the champion's).")


class FeaturesBatchItem(BaseModel):
    """One flight's answer in a batch: `vector` when status is 200, otherwise `error`."""

    flight_id: str
    status: int
    vector: FeatureVector | None = None
    error: Problem | None = None


class FeaturesBatchResponse(BaseModel):
    results: list[FeaturesBatchItem] = Field(description="One per requested flight, in the request's order.")


class PredictRequest(BaseModel):
    """A flight as the schedule gives it; its features are read as of its prediction time."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "carrier": "AA", "flight": 100, "origin": "LGA", "dest": "ORD", "sched_dep_ts": "2013-06-09T12:30:00-04:00",
        "tailnum": "N100AA", "distance": 733}]})

    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="Two-character carrier code, e.g. UA.", examples=["AA"])
    flight: json_integer(1, 9999) = Field(description="Flight number.", examples=[100])
    origin: Origin = Field(description="Origin airport (FAA code).", examples=["LGA"])
    dest: str = Field(pattern=r"^[A-Z]{3}$", description="Destination airport (FAA code).", examples=["ORD"])
    sched_dep_ts: _instant_type("sched_dep_ts", "Scheduled departure.", "2013-06-09T12:30:00-04:00")
    tailnum: str | None = Field(default=None, min_length=1, max_length=8, description="Tail number, if known.",
                                examples=["N100AA"])
    distance: json_integer(1, 10_000) | None = Field(default=None, description="Miles.", examples=[733])
    lookback_minutes: json_integer(0, 7 * 24 * 60) = Field(
        default=0,
        description="Read the features this many minutes before the prediction time (sched_dep_ts less the "
                    "horizon) instead of at it; never after it, which would let the model see later events.")


class Prediction(BaseModel):
    flight_id: str
    prediction_ts: str
    as_of: str
    delay_probability: float = Field(ge=0, le=1)
    model_name: str
    model_version: str
    service: str
    features: dict[str, FeatureValue]


class PredictBatchItem(BaseModel):
    """One flight's answer in a batch: `prediction` when status is 200, otherwise `error`."""

    flight_id: str
    status: int
    prediction: Prediction | None = None
    error: Problem | None = None


class ModelInfo(BaseModel):
    name: str
    version: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    store: str
    watermark: str | None = None
    flights: int | None = None
    model: ModelInfo | None = None
    detail: str | None = None


class FeatureService(BaseModel):
    """The features one model version was trained on, at the versions it was trained with."""

    name: str = Field(examples=["tarmac-flight-delay@3"])
    model_name: str
    model_version: str
    champion: bool
    servable: bool = Field(description="Whether the online store holds every feature at the version the model needs.")
    features: dict[str, int] = Field(description="Feature name -> the version the model was trained with.")
    stale: list[str] = Field(description="The features whose version the store does not hold (empty when servable).")


Problem.model_rebuild()


# -- POST /events ------------------------------------------------------------------------------------
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_EVENTS = 1000  # events per POST /events
_KEY_TYPES: dict[str, Any] = {
    "origin": (Origin, Field(description="Origin airport (FAA code).")),
    "dest": (str, Field(pattern=KEY_PATTERNS["dest"], description="Destination airport (FAA code).")),
    "carrier": (str, Field(pattern=KEY_PATTERNS["carrier"], description="Two-character carrier code.")),
}
_EVENT_DOCS = {
    "departure": "A flight left its gate: at ts = sched_dep_ts + dep_delay.",
    "cancellation": "A flight was cancelled: at its scheduled departure.",
    "weather": "An hourly observation at an origin: at its hour.",
}


def _event_model(kind: str) -> type[BaseModel]:
    """The fields of one kind of event, as the feature registry reads them: the keys of every
    feature its source feeds (required) and the values they aggregate (null when unknown); the
    rules of tarmac.online.events.validate, which the event stream's entries keep."""
    keys, values = event_shape(kind)
    fields: dict[str, Any] = {
        "kind": (Literal[kind], Field(description="The kind of event.")),  # type: ignore[valid-type]
        "event_id": (str, Field(pattern=EVENT_ID_PATTERN, description="The producer's id: an event pushed again "
                                "with the same id is a duplicate, counted and not applied.", examples=[f"{kind}-1"])),
        "ts": (_instant_type("ts", "When it happened (event time).", "2013-06-09T10:31:00-04:00"), ...),
        **{name: _KEY_TYPES[name] for name in keys},
        **{name: (JsonNumber | None, Field(default=None, description=f"{name}, as silver holds it (null: unknown)."))
           for name in values},
    }
    model = create_model(f"{kind.title()}Event", __config__=ConfigDict(extra="forbid"), **fields)
    model.__doc__ = _EVENT_DOCS.get(kind, kind)
    return model


EVENT_MODELS = {kind: _event_model(kind) for kind in KINDS}
PushedEvent = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="kind")]  # noqa: UP007


class PushRequest(BaseModel):
    """Events for the speed layer, applied in event-time order, after every event pushed before them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "events": [{"kind": "departure", "event_id": "dep-AA-100-20130609", "ts": "2013-06-09T12:35:00-04:00",
                    "origin": "LGA", "dest": "ORD", "carrier": "AA", "dep_delay": 5.0},
                   {"kind": "weather", "event_id": "wx-LGA-2013060912", "ts": "2013-06-09T12:00:00-04:00",
                    "origin": "LGA", "temp": 71.1, "wind_speed": 9.2, "visib": 10.0, "precip": 0.0, "humid": 58.0}],
        "watermark": "2013-06-09T12:35:00-04:00"}]})

    events: list[PushedEvent] = Field(min_length=1, max_length=MAX_EVENTS)
    watermark: _instant_type("watermark", "Every event up to this instant has now been pushed: the store answers "
                             "for it at once (without, the latest event's instant itself stays open, as more "
                             "events of that instant may follow).", "2013-06-09T12:35:00-04:00") | None = None


class PushResult(BaseModel):
    received: int = Field(description="Events in the request.")
    applied: int = Field(description="Events new to the speed layer, applied.")
    duplicates: int = Field(description="Events whose id was pushed before (or twice in this request): not applied.")
    late: int = Field(description="Applied events older than the watermark: their windows change from the "
                                  "watermark on, never before it.")
    late_ignored: int = Field(description="Windows an applied late event had already left, so did not change "
                                          "(the speed layer's count: one event may leave several).")
    watermark: str | None = Field(description="The online store's watermark now: every value as of it is exact.")
