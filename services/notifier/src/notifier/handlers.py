"""Notifier's handlers: the cancellation email and the HOME notice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import stamina
import structlog
from pymongo.errors import PyMongoError

from booking_contracts import CloudEvent, JobRequestCancelled
from notifier.emails import UnsendableEmail, cancellation_email
from notifier.store import Notices, SentEmails
from service_runtime.errors import Unavailable
from service_runtime.humanize import day_and_time, instant
from service_runtime.logs import redact

log = structlog.get_logger(__name__)

RECORD_PATIENCE_SECONDS = 300.0  # how long a sent email's record is retried while the database is away

EMAIL_CONSUMER = "notifier.cancellation_email"
NOTICE_CONSUMER = "notifier.home_notice"
NOTICE_NAMESPACE = uuid.UUID("6f1c2f6e-6a53-4d39-9c0f-5f3f0e0f2a11")


class MailConnection(Protocol):
    async def send(
        self,
        message: EmailMessage,
        *,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
        within: float | None = None,
    ) -> None: ...


class Mailer(Protocol):
    def connection(self) -> AbstractAsyncContextManager[MailConnection]: ...


def notice_for(event: CloudEvent[JobRequestCancelled], *, now: datetime) -> dict[str, Any]:
    """The HOME notice: who cancelled what, for when, and when it was cancelled."""
    data = event.data
    when = day_and_time(data.requested_date, data.requested_start_time)
    cancelled = instant(data.cancelled_at, data.business.timezone)
    who = data.client.name if data.cancelled_by.kind == "client" else f"An admin (for {data.client.name})"
    return {
        "_id": str(uuid.uuid5(NOTICE_NAMESPACE, str(event.id))),
        "event_id": str(event.id),
        "dedupe_key": f"{NOTICE_CONSUMER}:{event.id}",
        "business_id": data.business.id,
        "kind": event.type,
        "title": f"{data.client.name} cancelled a job request"
        if data.cancelled_by.kind == "client"
        else f"A job request of {data.client.name} was cancelled by an admin",
        "message": f"{who} cancelled the job request {data.job_request_id} for {data.service.name} on {when}. "
        f"Cancelled {cancelled}.",
        "job_request_id": data.job_request_id,
        "client": {"id": data.client.id, "name": data.client.name},
        "service": data.service.name,
        "requested_date": data.requested_date.isoformat(),
        "requested_start_time": data.requested_start_time.strftime("%H:%M"),
        "cancelled_at": data.cancelled_at,
        "cancelled_by": data.cancelled_by.model_dump(),
        "reason": data.reason,
        "timezone": data.business.timezone,
        "created_at": now,
        "read_at": None,
    }


async def on_job_request_cancelled(
    event: CloudEvent[JobRequestCancelled],
    *,
    mailer: Mailer,
    notices: Notices,
    sent: SentEmails,
    sender: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    record_patience: float = RECORD_PATIENCE_SECONDS,
) -> None:
    """Post the notice and email the client with the admin inbox in CC, once per event.

    The notice and the email's claim go to the database together (one round trip's wait, and each shares its group
    write with other deliveries'). An email that cannot be written still gets its notice before the event is parked.
    """

    async def post_notice() -> None:
        if await notices.add(notice_for(event, now=clock())):
            log.info("notice.created", job_request_id=event.data.job_request_id)

    try:
        message = cancellation_email(event, sender=sender)  # before the claim: an unsendable email claims nothing
    except UnsendableEmail:
        await post_notice()
        raise
    key = sent.key(EMAIL_CONSUMER, str(event.id), event.data.client.email)
    # The send gets under half the claim's lease, and so does the record after it unless the database is away (then
    # the record waits longer: see record()), so that normally the claim outlasts both.
    budget = sent.lease.total_seconds() * 0.4
    loop = asyncio.get_running_loop()
    # Claimed before waiting for an SMTP connection, so that concurrent deliveries' claims go out together.
    claimed_at, send_by = clock(), loop.time() + budget  # the claim's own round trips count against the send
    posted, claim = await asyncio.gather(post_notice(), sent.claim(key, now=claimed_at), return_exceptions=True)
    if isinstance(claim, BaseException):
        raise claim
    if isinstance(posted, BaseException):
        if claim == "claimed":  # nothing was sent: give the claim back so that the retry may send at once
            await _release_quietly(sent, key, claimed_at=claimed_at)
        raise posted
    if claim == "sent":
        return
    if claim == "busy":
        raise Unavailable("another delivery of this event is sending its email")
    accepted = False

    async def record() -> None:
        # Right after the 250: a crash before this write is the one window that resends (same Message-ID). A
        # database outage is waited out here, holding the delivery, for up to `record_patience` (past the claim's
        # lease if need be): giving up would defer the delivery, which then finds the claim without a record and
        # sends again once the lease has run out, a second email for certain; holding on risks one only if another
        # delivery of the same event is in flight meanwhile.
        nonlocal accepted
        accepted = True
        patience = max(budget, record_patience)
        deadline = loop.time() + patience
        try:
            async for attempt in stamina.retry_context(on=(PyMongoError, TimeoutError), timeout=patience, wait_max=2.0):
                with attempt:
                    async with asyncio.timeout_at(deadline):  # each attempt too: one may hang up to the db timeout
                        await sent.mark_sent(key, message_id=str(message["Message-ID"]), at=clock())
        except TimeoutError as exc:  # the database, not the message: retry later without using an attempt
            raise Unavailable(f"the sent email could not be recorded within {patience:.0f} s") from exc

    try:
        async with mailer.connection() as smtp:
            if send_by - loop.time() < budget / 2:
                # The wait for a connection ate most of the claim's time (a delivery that sent past its lease could send
                # alongside one that took the claim over): claim afresh. If it was taken over meanwhile, ours is
                # gone and the insert finds theirs.
                await sent.release(key, claimed_at=claimed_at)
                claimed_at, send_by = clock(), loop.time() + budget
                claim = await sent.claim(key, now=claimed_at)
                if claim == "sent":
                    return
                if claim == "busy":
                    raise Unavailable("another delivery of this event took over its email while this one waited")
                if send_by - loop.time() < budget / 2:  # the database is slow: wait, without using an attempt
                    raise Unavailable("claiming the email took too long to send it within its lease")
            await smtp.send(message, on_accepted=record, within=send_by - loop.time())
    except BaseException:
        if not accepted and claim == "claimed":  # not sent: give the claim back so that the retry may send at once
            await _release_quietly(sent, key, claimed_at=claimed_at)
        raise
    cc = redact(event.data.business.admin_email) if message["Cc"] is not None else None
    log.info("email.sent", to=redact(event.data.client.email), cc=cc)


async def _release_quietly(sent: SentEmails, key: str, *, claimed_at: datetime) -> None:
    """Give a claim back after a failure; if that fails too, the failure already in hand is the one to report (the
    claim then expires after its lease)."""
    try:
        await sent.release(key, claimed_at=claimed_at)
    except Exception as exc:  # noqa: BLE001
        log.warning("email.claim_release_failed", error=repr(exc))
