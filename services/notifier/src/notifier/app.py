"""Notifier's composition root: stores, mailer and subscriptions, built from one Settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from notifier import api
from notifier.emails import SmtpMailer
from notifier.handlers import on_job_request_cancelled
from notifier.live import StreamTiming, TooManyStreams, notice_stream_router
from notifier.settings import Settings
from notifier.store import Notices, SentEmails
from service_runtime.amqp import ConsumerTopology
from service_runtime.consumer import Handler
from service_runtime.consumer_app import create_consumer_app
from service_runtime.errors import NotFound
from service_runtime.web import install_cors


def topology(settings: Settings) -> ConsumerTopology:
    """Notifier's own quorum queue, bound to the one event it acts on."""
    return settings.topology(binding_keys=("job_request.cancelled",))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the notifier: notices API plus the `job_request.cancelled` consumer."""
    settings = settings or Settings()

    async def wiring(
        app: FastAPI, db: AsyncDatabase[dict[str, Any]]
    ) -> tuple[Mapping[str, Handler], Callable[[], Awaitable[None]]]:
        notices = Notices(db, linger=settings.write_linger_seconds)
        sent = SentEmails(
            db,
            lease=timedelta(seconds=settings.email_claim_lease_seconds),
            linger=settings.write_linger_seconds,
        )
        await notices.create_indexes()
        await sent.create_indexes()
        await sent.adopt_earlier_layout()
        app.state.notices = notices
        mailer = SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
            connections=settings.smtp_connections,
        )
        subscriptions: dict[str, Handler] = {
            "job_request.cancelled": partial(
                on_job_request_cancelled, mailer=mailer, notices=notices, sent=sent, sender=settings.mail_from
            ),
        }
        return subscriptions, mailer.close

    timing = StreamTiming(
        poll_seconds=settings.notice_stream_poll_seconds,
        lookback=timedelta(seconds=settings.notice_stream_lookback_seconds),
        lifetime_seconds=settings.notice_stream_seconds,
        batch=settings.notice_stream_batch,
        streams_per_business=settings.notice_streams_per_business,
    )
    app = create_consumer_app(
        name="notifier",
        settings=settings,
        database=settings.mongodb_database,
        topology=topology(settings),
        wiring=wiring,
        routers=[api.router, notice_stream_router(timing)],
        error_table={NotFound: 404, TooManyStreams: 429},
    )
    install_cors(app, settings.cors_origins)
    return app
