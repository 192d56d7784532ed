"""Job request events, version 1: past-tense models, wire types and routing constants."""

from __future__ import annotations

import functools
from datetime import date, time
from typing import Annotated, ClassVar, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

EXCHANGE = "booking.events"
"""Durable topic exchange of booking's events; the routing key is the event type."""

SOURCE = "/booking"


def _wall_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a wall-clock time has no offset: the business timezone applies")
    return value


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _iana_zone(value: str) -> str:
    # The list, not ZoneInfo(value): that raises IsADirectoryError (not a validation error) for "America" (a folder).
    if value not in _known_zones():
        raise ValueError(f"not an IANA timezone: {value!r}")
    return value


IANA_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"  # the form of every name in the tz database

IanaTimezone = Annotated[
    str, AfterValidator(_iana_zone), WithJsonSchema({"type": "string", "pattern": IANA_ZONE_PATTERN})
]
"""An IANA timezone name the standard library knows (with tzdata installed), e.g. Europe/London."""

WallClockTime = Annotated[
    time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?$",
            "description": "Local wall-clock time without offset (HH:MM[:SS]); the business timezone applies.",
        }
    ),
]
SCHEMA_BASE = "https://schemas.petsitting.example/events"


class _Contract(BaseModel):
    # Unknown fields are ignored so that additive changes do not break readers.
    model_config = ConfigDict(frozen=True, extra="ignore")


class ClientRef(_Contract):
    """The client a job request belongs to."""

    id: str
    name: str
    email: str


class BusinessRef(_Contract):
    """The pet-sitting business, with the admin inbox that gets the CC."""

    id: str
    name: str
    admin_email: str
    timezone: IanaTimezone = Field(description="IANA timezone of the business, used when rendering for people.")


class ServiceRef(_Contract):
    """The service type requested."""

    id: str
    name: str
    duration_minutes: int


class PetRef(_Contract):
    """A pet the service is for."""

    id: str
    name: str
    species: str


class Actor(_Contract):
    """Who made the change."""

    kind: Literal["client", "admin"]
    id: str


class JobRequestEvent(_Contract):
    """What every job request event carries: consumers never call back into booking."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]

    job_request_id: str
    client: ClientRef
    business: BusinessRef
    service: ServiceRef
    pets: list[PetRef]
    requested_date: date = Field(description="Requested day, in the business timezone.")
    requested_start_time: WallClockTime = Field(
        description="Requested start, wall-clock time in the business timezone."
    )


class JobRequestSubmitted(JobRequestEvent):
    """A client submitted a job request (an online booking)."""

    TYPE: ClassVar[str] = "job_request.submitted"
    VERSION: ClassVar[int] = 1

    notes: str = ""
    submitted_at: AwareDatetime
    submitted_by: Actor


class JobRequestScheduled(JobRequestEvent):
    """The business scheduled a job request: it is now a job."""

    TYPE: ClassVar[str] = "job_request.scheduled"
    VERSION: ClassVar[int] = 1

    scheduled_at: AwareDatetime
    scheduled_by: Actor


class JobRequestCancelled(JobRequestEvent):
    """A job request was cancelled before it was scheduled."""

    TYPE: ClassVar[str] = "job_request.cancelled"
    VERSION: ClassVar[int] = 1

    cancelled_at: AwareDatetime
    cancelled_by: Actor
    reason: str | None = Field(default=None, max_length=500)


EVENTS: dict[tuple[str, int], type[JobRequestEvent]] = {
    (model.TYPE, model.VERSION): model for model in (JobRequestSubmitted, JobRequestScheduled, JobRequestCancelled)
}
"""Every (wire type, major version) this package defines, with its data model."""


class UnknownEventType(LookupError):
    """No model for this (type, version): the reader must park the event, not crash."""


def data_model_for(event_type: str, version: int) -> type[JobRequestEvent]:
    """Return the data model of an event type and version, or raise UnknownEventType."""
    try:
        return EVENTS[(event_type, version)]
    except KeyError:
        raise UnknownEventType(f"unknown event {event_type} v{version}") from None


def dataschema_for(event_type: str, version: int) -> str:
    """Return the dataschema URI of an event type and major version."""
    return f"{SCHEMA_BASE}/{event_type}/v{version}"
