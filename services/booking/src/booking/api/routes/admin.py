"""The admin's routes: the job request processing screen, schedule, cancel on the client's behalf, go to portal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import AfterValidator, NaiveDatetime

from booking.api.deps import BookingDeps, CorrelationId
from booking.api.models import CancelBody, ClientOut, JobRequestOut, PortalSession
from booking.domain import Actor, ClientNotFound, Status
from booking.handlers import CancelJobRequest, ScheduleJobRequest, cancel_job_request, schedule_job_request
from service_runtime.auth import CurrentAdmin, Principal, TokenCodec
from service_runtime.errors import InvalidReference
from service_runtime.web import UtcInstant

router = APIRouter(prefix="/v1/admin", tags=["admin"])

ID_PATTERN = r"^[A-Za-z0-9_-]+$"
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


def _whole_minutes(value: datetime) -> datetime:
    if value.second or value.microsecond:
        raise ValueError("give the date and start time of the last request you have, as YYYY-MM-DDTHH:MM")
    return value


WallClock = Annotated[NaiveDatetime, AfterValidator(_whole_minutes)]


@router.get("/job-requests")
async def list_job_requests(
    admin: CurrentAdmin,
    deps: BookingDeps,
    status: Annotated[Status, Query()] = Status.REQUESTED,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    after: Annotated[
        WallClock | None,
        Query(
            description="Next page of the requested or scheduled list: the `date` and `start_time` of the last "
            "request you have, `YYYY-MM-DDTHH:MM`."
        ),
    ] = None,
    after_id: Annotated[
        str | None, Query(max_length=64, pattern=ID_PATTERN, description="With `after`: that request's id.")
    ] = None,
    before: Annotated[
        UtcInstant | None,
        Query(description="Next page of the cancelled list: the `cancelled_at` of the last request you have."),
    ] = None,
    before_id: Annotated[
        str | None, Query(max_length=64, pattern=ID_PATTERN, description="With `before`: that request's id.")
    ] = None,
) -> list[JobRequestOut]:
    """The job request processing screen: requests in one status (requested by default), `limit` at a time.

    Requested and scheduled ones come soonest first (`after` and `after_id` page on), cancelled ones newest
    cancellation first (`before` and `before_id` page back, as on the client LOGS); requests of one time by id.
    """
    if before_id is not None and before is None:
        raise InvalidReference("before_id needs before: the cancelled_at of the same request.")
    if after_id is not None and after is None:
        raise InvalidReference("after_id needs after: the date and start time of the same request.")
    if status is Status.CANCELLED and after is not None:
        raise InvalidReference("The cancelled list comes newest cancellation first: page it with before and before_id.")
    if status is not Status.CANCELLED and before is not None:
        raise InvalidReference(f"The {status.value} list comes soonest first: page it with after and after_id.")
    requests = await deps.projection.of_business(
        admin.business_id,
        status=status,
        limit=limit,
        after=(after, after_id) if after is not None else None,
        before=(before, before_id) if before is not None else None,
    )
    return [JobRequestOut.of(r) for r in requests]


@router.post("/job-requests/{job_request_id}/schedule")
async def schedule(
    job_request_id: Id, admin: CurrentAdmin, deps: BookingDeps, correlation_id: CorrelationId
) -> JobRequestOut:
    """Schedule a job request; a cancelled one answers 409 `job_request_cancelled`."""
    cmd = ScheduleJobRequest(
        job_request_id=job_request_id, business_id=admin.business_id, actor=Actor("admin", admin.subject)
    )
    return JobRequestOut.of(await schedule_job_request(cmd, deps=deps, correlation_id=correlation_id))


@router.post("/job-requests/{job_request_id}/cancel")
async def cancel(
    job_request_id: Id,
    admin: CurrentAdmin,
    deps: BookingDeps,
    correlation_id: CorrelationId,
    body: Annotated[CancelBody | None, Body()] = None,
) -> JobRequestOut:
    """Cancel a job request on the client's behalf."""
    cmd = CancelJobRequest(
        job_request_id=job_request_id,
        business_id=admin.business_id,
        actor=Actor("admin", admin.subject),
        reason=body.reason if body else None,
    )
    return JobRequestOut.of(await cancel_job_request(cmd, deps=deps, correlation_id=correlation_id))


@router.get("/clients/{client_id}")
async def get_client(client_id: Id, admin: CurrentAdmin, deps: BookingDeps) -> ClientOut:
    """A client of the business, for the client's page."""
    client = await deps.catalogue.client(admin.business_id, client_id)
    if client is None:
        raise ClientNotFound("No such client.")
    return ClientOut(id=client.id, name=client.name)


@router.post("/clients/{client_id}/portal-session")
async def portal_session(client_id: Id, admin: CurrentAdmin, deps: BookingDeps, request: Request) -> PortalSession:
    """A client token for "go to portal": opens the portal as that client."""
    client = await deps.catalogue.client(admin.business_id, client_id)
    if client is None:
        raise ClientNotFound("No such client.")
    tokens: TokenCodec = request.app.state.tokens
    token = tokens.issue(Principal(role="client", subject=client.id, business_id=admin.business_id))
    return PortalSession(client_id=client.id, token=token, portal_url=f"/portal/#token={token}")
