"""The job request and its transitions: pure, standard library only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time
from enum import StrEnum

from service_runtime.errors import DomainError, NotFound


class Status(StrEnum):
    """Where a job request is in its life."""

    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a client, or an admin of the business."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Business:
    id: str
    name: str
    admin_email: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    duration_minutes: int


@dataclass(frozen=True, slots=True)
class Pet:
    id: str
    name: str
    species: str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A client's online booking; `version` counts its changes (1 = submitted)."""

    id: str
    version: int
    status: Status
    client: Client
    business: Business
    service: Service
    pets: tuple[Pet, ...]
    date: date
    start_time: time
    notes: str
    submitted_at: datetime
    submitted_by: Actor
    scheduled_at: datetime | None = None
    scheduled_by: Actor | None = None
    cancelled_at: datetime | None = None
    cancelled_by: Actor | None = None
    cancel_reason: str | None = None

    @property
    def cancellable(self) -> bool:
        """Only a request the business has not scheduled yet can be cancelled in the portal."""
        return self.status is Status.REQUESTED

    @property
    def label(self) -> str:
        """How the schedule shows it: requested jobs start with `REQ: `, scheduled jobs do not."""
        prefix = "REQ: " if self.status is Status.REQUESTED else ""
        return f"{prefix}{self.service.name}"


class JobRequestNotFound(NotFound):
    code = "job_request_not_found"


class ClientNotFound(NotFound):
    code = "client_not_found"


class JobRequestAlreadyScheduled(DomainError):
    code = "job_request_already_scheduled"


class JobRequestAlreadyCancelled(DomainError):
    code = "job_request_cancelled"


class NoChange(Exception):
    """The request is already in the asked-for state: a repeat answers with it, and nothing is published."""

    def __init__(self, current: JobRequest) -> None:
        super().__init__(current.id)
        self.current = current


def submit(
    *,
    id: str,
    client: Client,
    business: Business,
    service: Service,
    pets: tuple[Pet, ...],
    on: date,
    at: time,
    notes: str,
    by: Actor,
    now: datetime,
) -> JobRequest:
    """A new job request, as the client submitted it."""
    return JobRequest(
        id=id,
        version=1,
        status=Status.REQUESTED,
        client=client,
        business=business,
        service=service,
        pets=pets,
        date=on,
        start_time=at,
        notes=notes,
        submitted_at=now,
        submitted_by=by,
    )


def cancel(request: JobRequest, *, by: Actor, now: datetime, reason: str | None) -> JobRequest:
    """Cancel a request that is not scheduled yet; a repeat is no change."""
    if request.status is Status.CANCELLED:
        raise NoChange(request)
    if request.status is Status.SCHEDULED:
        raise JobRequestAlreadyScheduled(
            "This job request has already been scheduled, so it can no longer be cancelled here: "
            "scheduled jobs are cancelled another way (see 'How does a Client Cancel a Scheduled Job?')."
        )
    return replace(
        request,
        version=request.version + 1,
        status=Status.CANCELLED,
        cancelled_at=now,
        cancelled_by=by,
        cancel_reason=reason or None,
    )


def schedule(request: JobRequest, *, by: Actor, now: datetime) -> JobRequest:
    """Turn a request into a scheduled job; a cancelled one cannot be, a repeat is no change."""
    if request.status is Status.SCHEDULED:
        raise NoChange(request)
    if request.status is Status.CANCELLED:
        raise JobRequestAlreadyCancelled("This job request was cancelled, so it cannot be scheduled.")
    return replace(request, version=request.version + 1, status=Status.SCHEDULED, scheduled_at=now, scheduled_by=by)


EVENT_TYPE_OF_STATUS = {
    Status.REQUESTED: "job_request.submitted",
    Status.SCHEDULED: "job_request.scheduled",
    Status.CANCELLED: "job_request.cancelled",
}
"""The event each transition records: the new status names it."""
