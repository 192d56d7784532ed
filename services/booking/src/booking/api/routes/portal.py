"""The client portal's routes: what the booking form needs, the schedule, submit and cancel."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, status

from booking.api.deps import BookingDeps, CorrelationId
from booking.api.models import (
    CancelBody,
    DaySchedule,
    JobRequestOut,
    MonthSchedule,
    PetOut,
    ScheduleDay,
    ScheduleEntry,
    ServiceOut,
    SubmitBody,
)
from booking.domain import Actor, JobRequestNotFound, Status
from booking.handlers import CancelJobRequest, SubmitJobRequest, cancel_job_request, submit_job_request
from service_runtime.auth import CurrentClient
from service_runtime.errors import InvalidReference

router = APIRouter(prefix="/v1/portal", tags=["portal"])

JobRequestId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")  # [0-9], not \d: \d also matches other scripts' digits


@router.get("/services")
async def list_services(client: CurrentClient, deps: BookingDeps) -> list[ServiceOut]:
    """The business's service types, for the booking form."""
    return [ServiceOut.of(s) for s in await deps.catalogue.services(client.business_id)]


@router.get("/pets")
async def list_pets(client: CurrentClient, deps: BookingDeps) -> list[PetOut]:
    """The client's pets, for the booking form."""
    return [PetOut.of(p) for p in await deps.catalogue.pets(client.business_id, client.subject)]


@router.post("/job-requests", status_code=status.HTTP_201_CREATED)
async def submit(
    body: SubmitBody,
    client: CurrentClient,
    deps: BookingDeps,
    correlation_id: CorrelationId,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=64,
            pattern=r"^[\x21-\x7e]+$",
            description="Your key for this submission (a UUID, say): a retry with it (after a timeout or a 503) "
            "answers the request it made instead of making another; the same key with another request is a 422.",
        ),
    ] = None,
) -> JobRequestOut:
    """Submit a job request (an online booking): status `requested`."""
    cmd = SubmitJobRequest(
        business_id=client.business_id,
        client_id=client.subject,
        service_id=body.service_id,
        date=body.date,
        start_time=body.start_time,
        pet_ids=tuple(body.pet_ids),
        notes=body.notes,
        idempotency_key=idempotency_key,
    )
    return JobRequestOut.of(await submit_job_request(cmd, deps=deps, correlation_id=correlation_id))


@router.get("/schedule")
async def month_schedule(
    client: CurrentClient,
    deps: BookingDeps,
    month: Annotated[str, Query(description="YYYY-MM", examples=["2026-12"], max_length=7)],
) -> MonthSchedule:
    """The client's days with entries in a month; requested entries are labelled `REQ: `, cancelled ones left out."""
    match = MONTH.match(month)
    if not match:
        raise InvalidReference("month must be YYYY-MM, e.g. 2026-12.")
    year, mon = int(match[1]), int(match[2])
    if not date.min.year <= year < date.max.year:
        raise InvalidReference(f"month must be from {date.min.year:04d}-01 to {date.max.year - 1}-12.")
    start = date(year, mon, 1)
    end = date(year + mon // 12, mon % 12 + 1, 1)
    business = await deps.catalogue.business(client.business_id)
    days: dict[date, list[ScheduleEntry]] = {}
    for r in await deps.projection.of_client(client.business_id, client.subject, start=start, end=end):
        if r.status is not Status.CANCELLED:
            days.setdefault(r.date, []).append(
                ScheduleEntry(
                    job_request_id=r.id, label=r.label, status=r.status.value, start_time=r.start_time.strftime("%H:%M")
                )  # type: ignore[arg-type]
            )
    return MonthSchedule(
        month=month,
        timezone=business.timezone if business else "UTC",
        days=[ScheduleDay(date=d, entries=e) for d, e in sorted(days.items())],
    )


@router.get("/schedule/{day}")
async def day_schedule(day: date, client: CurrentClient, deps: BookingDeps) -> DaySchedule:
    """All services booked or requested on one day, each saying whether it can be cancelled."""
    if day == date.max:
        raise InvalidReference(f"day must be before {date.max.isoformat()}.")
    business = await deps.catalogue.business(client.business_id)
    next_day = date.fromordinal(day.toordinal() + 1)
    requests = await deps.projection.of_client(client.business_id, client.subject, start=day, end=next_day)
    return DaySchedule(
        date=day,
        timezone=business.timezone if business else "UTC",
        job_requests=[JobRequestOut.of(r) for r in requests],
    )


@router.get("/job-requests/{job_request_id}")
async def get_job_request(job_request_id: JobRequestId, client: CurrentClient, deps: BookingDeps) -> JobRequestOut:
    """One of the client's job requests."""
    found = await deps.projection.get(job_request_id)
    if found is None or found.client.id != client.subject or found.business.id != client.business_id:
        raise JobRequestNotFound("No such job request.")
    return JobRequestOut.of(found)


@router.post("/job-requests/{job_request_id}/cancel")
async def cancel(
    job_request_id: JobRequestId,
    client: CurrentClient,
    deps: BookingDeps,
    correlation_id: CorrelationId,
    body: Annotated[CancelBody | None, Body()] = None,
) -> JobRequestOut:
    """Cancel a job request before it is scheduled; a repeat answers the same `cancelled_at`."""
    cmd = CancelJobRequest(
        job_request_id=job_request_id,
        business_id=client.business_id,
        client_id=client.subject,
        actor=Actor("client", client.subject),
        reason=body.reason if body else None,
    )
    return JobRequestOut.of(await cancel_job_request(cmd, deps=deps, correlation_id=correlation_id))
