"""Booking's use cases: async functions with keyword dependencies; each change is one event insert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

import structlog

from booking import domain
from booking.domain import Actor, JobRequest, JobRequestNotFound, NoChange
from booking.events import Document, EventStream, VersionConflict
from booking.store import Catalogue, JobRequests
from service_runtime.errors import DomainError, InvalidReference, NotFound

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


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


_SUBMISSIONS = UUID("6f1d3c2e-7a4b-5c8d-9e0f-1a2b3c4d5e6f")  # the namespace of ids derived from idempotency keys


def request_id_for(business_id: str, client_id: str, idempotency_key: str) -> str:
    """The id of the request a client's submission with this key creates: the same key, the same request."""
    return str(uuid5(_SUBMISSIONS, f"{business_id}\n{client_id}\n{idempotency_key}"))


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
    idempotency_key: str | None = None  # the client's key for this submission: a retry with it creates nothing new


async def submit_job_request(cmd: SubmitJobRequest, *, deps: Deps, correlation_id: str) -> JobRequest:
    """Store a new request from a client (status requested); a repeat with the same id, or the same idempotency
    key, answers what is stored (as it is now), and the same key with another request is refused."""
    job_request_id = cmd.job_request_id
    if cmd.idempotency_key is not None:
        job_request_id = request_id_for(cmd.business_id, cmd.client_id, cmd.idempotency_key)
        # Before any check that may have changed since (a date now in the past): a retry gets what it made.
        if (existing := await deps.stream.latest(job_request_id)) is not None:
            return await _the_same_submission(existing, cmd, deps=deps)
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
    local = now.astimezone(ZoneInfo(business.timezone))
    if cmd.date < local.date():
        raise DateInThePast(f"{cmd.date.isoformat()} is in the past in the business's timezone ({business.timezone}).")
    if cmd.date == local.date() and cmd.start_time <= local.time().replace(tzinfo=None):
        raise DateInThePast(
            f"{cmd.start_time.strftime('%H:%M')} today has passed in the business's timezone ({business.timezone})."
        )
    request = domain.submit(
        id=job_request_id or str(uuid4()),
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
        if existing is None:
            raise JobRequestNotFound("No such job request.") from None
        return await _the_same_submission(existing, cmd, deps=deps)
    await deps.projection.save(request)
    deps.wake_relay(event)
    log.info("job_request.submitted", job_request_id=request.id)
    return request


async def _the_same_submission(existing: JobRequest, cmd: SubmitJobRequest, *, deps: Deps) -> JobRequest:
    """The stored request a repeated submission names, if it is this client's and asked for the same; its projection
    brought up to it (the first try may have stored the event and failed before the projection: the retry is what
    a 503 asks for, and the request must then show at once, not when the relay's sweep repairs it)."""
    if existing.client.id != cmd.client_id or existing.business.id != cmd.business_id:
        raise JobRequestNotFound("No such job request.")
    asked = (cmd.service_id, cmd.date, cmd.start_time, sorted(cmd.pet_ids), cmd.notes)
    pets = sorted(p.id for p in existing.pets)
    stored = (existing.service.id, existing.date, existing.start_time, pets, existing.notes)
    if cmd.idempotency_key is not None and asked != stored:
        raise IdempotencyKeyReused("This Idempotency-Key was used for another request: use a new key for a new one.")
    if await deps.projection.version(existing.id) < existing.version:
        await deps.projection.save(existing)
    return existing


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
    stored_version = hint.version if hint is not None else 0
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
        except DomainError as refused:
            if from_hint:
                continue
            if current is not None and current.version > stored_version and not isinstance(refused, NotFound):
                # The projection was behind the stream (a writer crashed between its two writes): the refusal was
                # decided on the stream; bring the projection up to it, as the sweep would, not only later. The
                # refusal is the answer either way: a failed repair is the sweep's to do.
                try:
                    await deps.projection.save(current)
                except Exception as exc:  # noqa: BLE001
                    log.warning("projection.repair_failed", job_request_id=job_request_id, error=repr(exc))
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
