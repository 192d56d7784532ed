"""Request and response bodies of booking's API."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from booking.domain import JobRequest, Pet, Service


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks and tabs are fine)")
    return value


# Text from people (and ids they send): stored, emailed and shown, so no control characters (PostgreSQL refuses
# NUL). The length goes before that check, on the string itself: after it, pydantic words a too-long or empty
# string as "at most 500 items after validation" / "at least 1 item after validation" (the optional reason and the
# pet ids were so worded).
Id = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_printable)]
Notes = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_printable)]
Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(_printable)]


class ServiceOut(BaseModel):
    id: str
    name: str
    duration_minutes: int

    @classmethod
    def of(cls, service: Service) -> ServiceOut:
        return cls(id=service.id, name=service.name, duration_minutes=service.duration_minutes)


class PetOut(BaseModel):
    id: str
    name: str
    species: str

    @classmethod
    def of(cls, pet: Pet) -> PetOut:
        return cls(id=pet.id, name=pet.name, species=pet.species)


class ActorOut(BaseModel):
    kind: Literal["client", "admin"]
    id: str


class ClientOut(BaseModel):
    id: str
    name: str


class JobRequestOut(BaseModel):
    """A job request as the portal and the admin screens show it."""

    id: str
    status: Literal["requested", "scheduled", "cancelled"]
    label: str
    service: ServiceOut
    pets: list[PetOut]
    date: date
    start_time: str = Field(examples=["09:00"])
    notes: str
    client: ClientOut
    timezone: str
    cancellable: bool
    submitted_at: datetime
    scheduled_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: ActorOut | None
    cancel_reason: str | None

    @classmethod
    def of(cls, r: JobRequest) -> JobRequestOut:
        return cls(
            id=r.id,
            status=r.status.value,
            label=r.label,
            service=ServiceOut.of(r.service),
            pets=[PetOut.of(p) for p in r.pets],
            date=r.date,
            start_time=r.start_time.strftime("%H:%M"),
            notes=r.notes,
            client=ClientOut(id=r.client.id, name=r.client.name),
            timezone=r.business.timezone,
            cancellable=r.cancellable,
            submitted_at=r.submitted_at,
            scheduled_at=r.scheduled_at,
            cancelled_at=r.cancelled_at,
            cancelled_by=ActorOut(kind=r.cancelled_by.kind, id=r.cancelled_by.id) if r.cancelled_by else None,  # type: ignore[arg-type]
            cancel_reason=r.cancel_reason,
        )


class SubmitBody(_Body):
    service_id: Id
    date: date
    start_time: time = Field(description="Wall-clock start in the business timezone, HH:MM.")
    pet_ids: list[Id] = Field(min_length=1, max_length=10)
    notes: Notes = ""

    @field_validator("pet_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each pet may be named once")
        return value

    @field_validator("start_time")
    @classmethod
    def _whole_minutes(cls, value: time) -> time:
        if value.second or value.microsecond or value.tzinfo:
            raise ValueError("give the start time as HH:MM, without seconds or offset")
        return value


class CancelBody(_Body):
    reason: Reason | None = None


class ScheduleEntry(BaseModel):
    job_request_id: str
    label: str = Field(examples=["REQ: Dog Walk 30 min"])
    status: Literal["requested", "scheduled"]
    start_time: str


class ScheduleDay(BaseModel):
    date: date
    entries: list[ScheduleEntry]


class MonthSchedule(BaseModel):
    month: str = Field(examples=["2026-12"])
    timezone: str
    days: list[ScheduleDay]


class DaySchedule(BaseModel):
    date: date
    timezone: str
    job_requests: list[JobRequestOut]


class PortalSession(BaseModel):
    client_id: str
    token: str
    portal_url: str
