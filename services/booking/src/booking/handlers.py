"""Booking's use cases: async functions with keyword dependencies; each change is one event insert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from uuid import uuid4
from zoneinfo import ZoneInfo

import structlog

from booking import domain
from booking.domain import Actor, JobRequest, JobRequestNotFound, NoChange
from booking.events import Document, EventStream, VersionConflict
from booking.store import Catalogue, JobRequests
from service_runtime.errors import DomainError, InvalidReference

Clock = Callable[[], datetime]
log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    """Now, in UTC, cut to milliseconds: MongoDB stores no finer, and a repeat must answer the same instant."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class ChangeContended(DomainError):
    code = "job_request_busy"


class DateInThePast(DomainError):
    code = "date_in_the_past"


@dataclass(frozen=True)
class Deps:
    """What the handlers need, built once in the composition root."""

    catalogue: Catalogue
    stream: EventStream
    projection: JobRequests
    wake_relay: Callable[[Document], None]
    clock: Clock = utc_now


@dataclass(frozen=True)
class SubmitJobRequest:
    business_id: str
    client_id: str
    service_id: str
    date: date
    start_time: time
    pet_ids: tuple[str, ...]
    notes: str = ""
    job_request_id: str | None = None


async def submit_job_request(cmd: SubmitJobRequest, *, deps: Deps, correlation_id: str) -> JobRequest:
    """Store a new request from a client (status requested); a repeat with the same id answers what is stored."""
    business = await deps.catalogue.business(cmd.business_id)
    client = await deps.catalogue.client(cmd.business_id, cmd.client_id)
    if business is None or client is None:
        raise InvalidReference("The client or business of this session no longer exists.")
    service = next((s for s in await deps.catalogue.services(business.id) if s.id == cmd.service_id), None)
    if service is None:
        raise InvalidReference(f"Service {cmd.service_id!r} is not offered by this business.")
    pets_by_id = {p.id: p for p in await deps.catalogue.pets(business.id, client.id)}
    unknown = [p for p in cmd.pet_ids if p not in pets_by_id]
    if unknown:
        raise InvalidReference(f"These pets are not yours: {', '.join(unknown)}.")
    now = deps.clock()
    if cmd.date < now.astimezone(ZoneInfo(business.timezone)).date():
        raise DateInThePast(f"{cmd.date.isoformat()} is in the past in the business's timezone ({business.timezone}).")
    request = domain.submit(
        id=cmd.job_request_id or str(uuid4()),
        client=client,
        business=business,
        service=service,
        pets=tuple(pets_by_id[p] for p in cmd.pet_ids),
        on=cmd.date,
        at=cmd.start_time,
        notes=cmd.notes,
        by=Actor("client", client.id),
        now=now,
    )
    try:
        event = await deps.stream.append(request, correlation_id=correlation_id)
    except VersionConflict:
        existing = await deps.stream.latest(request.id)
        if existing is None or existing.client.id != client.id:
            raise JobRequestNotFound("No such job request.") from None
        return existing
    await deps.projection.save(request)
    deps.wake_relay(event)
    log.info("job_request.submitted", job_request_id=request.id)
    return request


@dataclass(frozen=True)
class CancelJobRequest:
    job_request_id: str
    business_id: str
    actor: Actor
    client_id: str | None = None
    reason: str | None = None


async def cancel_job_request(cmd: CancelJobRequest, *, deps: Deps, correlation_id: str) -> JobRequest:
    """Cancel a request not yet scheduled; repeating it answers the same cancellation and publishes nothing."""
    now = deps.clock()
    return await _change(
        cmd.job_request_id,
        business_id=cmd.business_id,
        client_id=cmd.client_id,
        decide=lambda r: domain.cancel(r, by=cmd.actor, now=now, reason=cmd.reason),
        deps=deps,
        correlation_id=correlation_id,
    )


@dataclass(frozen=True)
class ScheduleJobRequest:
    job_request_id: str
    business_id: str
    actor: Actor


async def schedule_job_request(cmd: ScheduleJobRequest, *, deps: Deps, correlation_id: str) -> JobRequest:
    """Schedule a request (the admin's job request processing screen)."""
    now = deps.clock()
    return await _change(
        cmd.job_request_id,
        business_id=cmd.business_id,
        client_id=None,
        decide=lambda r: domain.schedule(r, by=cmd.actor, now=now),
        deps=deps,
        correlation_id=correlation_id,
    )


async def _change(
    job_request_id: str,
    *,
    business_id: str,
    client_id: str | None,
    decide: Callable[[JobRequest], JobRequest],
    deps: Deps,
    correlation_id: str,
    attempts: int = 5,
) -> JobRequest:
    # Optimistic concurrency: read the latest event, decide, insert the next version; a lost race re-reads.
    # The first try starts from the projection (on FerretDB v1 every read is a scan, and the event stream is larger).
    # That is safe because only a change goes ahead on it, and its insert of version N+1 fails unless N was the
    # latest; an answer without a change (a repeat, a 409, a 404) is always decided on the stream itself.
    hint = await deps.projection.get(job_request_id)
    for _ in range(attempts):
        from_hint = hint is not None
        current, hint = hint or await deps.stream.latest(job_request_id), None
        try:
            if current is None or current.business.id != business_id or (client_id and current.client.id != client_id):
                raise JobRequestNotFound("No such job request.")
            changed = decide(current)
        except NoChange as same:
            if from_hint:
                continue
            await deps.projection.save(same.current)
            return same.current
        except DomainError:
            if from_hint:
                continue
            raise
        try:
            event = await deps.stream.append(changed, correlation_id=correlation_id)
        except VersionConflict:
            continue
        await deps.projection.save(changed)
        deps.wake_relay(event)
        log.info(f"job_request.{changed.status.value}", job_request_id=changed.id, version=changed.version)
        return changed
    raise ChangeContended("This job request is being changed by someone else right now; try again.")
