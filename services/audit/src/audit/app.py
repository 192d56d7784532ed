"""Audit's composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from audit import api
from audit.handlers import on_job_request_event
from audit.settings import Settings
from audit.store import ClientLogs
from booking_contracts import EVENTS
from service_runtime.amqp import ConsumerTopology
from service_runtime.consumer import Handler
from service_runtime.consumer_app import create_consumer_app
from service_runtime.errors import InvalidReference, NotFound
from service_runtime.web import install_cors


def topology(settings: Settings) -> ConsumerTopology:
    """Audit's own quorum queue, bound to every job request event."""
    return settings.topology(binding_keys=("job_request.*",))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build audit: the LOGS API plus the `job_request.*` consumer."""
    settings = settings or Settings()

    async def wiring(
        app: FastAPI, db: AsyncDatabase[dict[str, Any]]
    ) -> tuple[Mapping[str, Handler], Callable[[], Awaitable[None]]]:
        logs = ClientLogs(db, linger=settings.write_linger_seconds)
        await logs.create_indexes()
        app.state.logs = logs
        handler = partial(on_job_request_event, logs=logs)
        subscriptions: dict[str, Handler] = {event_type: handler for event_type, _ in EVENTS}

        async def close() -> None:
            return None

        return subscriptions, close

    app = create_consumer_app(
        name="audit",
        settings=settings,
        database=settings.mongodb_database,
        topology=topology(settings),
        wiring=wiring,
        routers=[api.router],
        error_table={NotFound: 404, InvalidReference: 422},
    )
    install_cors(app, settings.cors_origins)
    return app
