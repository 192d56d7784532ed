"""The design users would otherwise write: one endpoint that cancels and does every effect inline.

Written to be fast and correct, not a strawman: the same auth, the same versioned insert for the change,
then the email (a pooled, reused SMTP connection, claimed by a unique insert like notifier's), the HOME
notice and the LOGS entry concurrently with `asyncio.gather`; it answers after all of them. Only here, in
bench/, never in a service. Run: `uvicorn --factory bench.sync_app:create_app`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Body, Depends, FastAPI
from fastapi.responses import JSONResponse

from audit.handlers import log_entry
from audit.store import ClientLogs
from booking.api.errors import ERROR_STATUS
from booking.api.models import CancelBody, JobRequestOut
from booking.codec import cloud_event
from booking.domain import Actor, JobRequest
from booking.events import Document, EventStream
from booking.handlers import CancelJobRequest, Deps, cancel_job_request
from booking.settings import Settings
from booking.store import Catalogue, JobRequests
from booking_contracts import CloudEvent, JobRequestCancelled
from notifier.emails import SmtpMailer, cancellation_email
from notifier.handlers import EMAIL_CONSUMER, notice_for
from notifier.store import Notices, SentEmails
from service_runtime.auth import Principal, current_client
from service_runtime.mongo import connect_mongo
from service_runtime.web import install_error_table

SENDER = "Bookings <no-reply@booking.example>"


class RememberingStream(EventStream):
    """Booking's event stream that also remembers the id of each event it stored (no read-back needed)."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.event_ids: dict[tuple[str, int], UUID] = {}

    async def append(self, request: JobRequest, *, correlation_id: str, event_id: UUID | None = None) -> Document:
        stored = await super().append(request, correlation_id=correlation_id, event_id=event_id)
        self.event_ids[(request.id, request.version)] = UUID(stored["_id"])
        return stored


class Effects:
    """The three effects, done inline and idempotently (unique inserts), as notifier and audit do them."""

    def __init__(self, mailer: SmtpMailer, notices: Notices, sent: SentEmails, logs: ClientLogs) -> None:
        self.mailer, self.notices, self.sent, self.logs = mailer, notices, sent, logs

    async def email(self, event: CloudEvent[JobRequestCancelled]) -> None:
        now = datetime.now(UTC)
        key = self.sent.key(EMAIL_CONSUMER, str(event.id), event.data.client.email)
        if await self.sent.claim(key, now=now) != "claimed":
            return
        message = cancellation_email(event, sender=SENDER)
        try:
            await self.mailer.send(message)
        except BaseException:
            await self.sent.release(key, claimed_at=now)
            raise
        await self.sent.mark_sent(key, message_id=str(message["Message-ID"]), at=datetime.now(UTC))

    async def all(self, request: JobRequest, event_id: UUID, correlation_id: str) -> None:
        event: Any = cloud_event(request, event_id=event_id, correlation_id=correlation_id)
        now = datetime.now(UTC)
        await asyncio.gather(
            self.email(event), self.notices.add(notice_for(event, now=now)), self.logs.add(log_entry(event, now=now))
        )


def create_app() -> FastAPI:
    mongo = connect_mongo(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"), app_name="bench-sync")
    db = mongo[os.environ.get("BENCH_SYNC_DATABASE", "bench_sync")]
    stream, projection = RememberingStream(db), JobRequests(db)
    deps = Deps(catalogue=Catalogue(db), stream=stream, projection=projection, wake_relay=lambda _: None)
    mailer = SmtpMailer(
        host=os.environ.get("SMTP_HOST", "127.0.0.1"),
        port=int(os.environ.get("SMTP_PORT", "1025")),
        connections=int(os.environ.get("SMTP_CONNECTIONS", "8")),
    )
    effects = Effects(mailer, Notices(db), SentEmails(db), ClientLogs(db))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for part in (stream, projection, effects.notices, effects.logs):
            await part.create_indexes()
        yield
        await mailer.close()
        await mongo.close()

    app = FastAPI(lifespan=lifespan)
    app.state.tokens = Settings().token_codec()
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Correlation-ID", validator=None)
    install_error_table(app, ERROR_STATUS)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.post("/v1/portal/job-requests/{job_request_id}/cancel")
    async def cancel(
        job_request_id: str,
        client: Annotated[Principal, Depends(current_client)],
        body: Annotated[CancelBody | None, Body()] = None,
    ) -> JobRequestOut:
        cmd = CancelJobRequest(
            job_request_id=job_request_id,
            business_id=client.business_id,
            client_id=client.subject,
            actor=Actor("client", client.subject),
            reason=body.reason if body else None,
        )
        cancelled = await cancel_job_request(cmd, deps=deps, correlation_id="sync")
        event_id = stream.event_ids.pop((cancelled.id, cancelled.version), None)
        if event_id is not None:  # None: a repeated cancel, whose effects the first one did
            await effects.all(cancelled, event_id, "sync")
        return JobRequestOut.of(cancelled)

    return app
