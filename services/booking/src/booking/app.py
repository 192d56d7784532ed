"""Booking's composition root: clients built from one Settings inside the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from booking.api.errors import ERROR_STATUS
from booking.api.routes import admin, portal
from booking.events import EventStream
from booking.handlers import Deps
from booking.pages import install_pages
from booking.relay import OutboxRelay
from booking.settings import Settings
from booking.store import Catalogue, JobRequests
from service_runtime.amqp import ConfirmedPublisher, connect_amqp, declare_events_exchange
from service_runtime.health import Connections, within
from service_runtime.logs import configure_logging
from service_runtime.mongo import connect_mongo
from service_runtime.web import service_app

log = structlog.get_logger(__name__)


async def open_storage(
    settings: Settings,
) -> tuple[AsyncMongoClient[dict[str, Any]], Catalogue, EventStream, JobRequests]:
    """Connect to booking's database and make sure its indexes exist."""
    mongo = connect_mongo(
        settings.mongodb_url,
        app_name="booking",
        max_pool_size=settings.mongodb_max_pool_size,
        timeout_seconds=settings.mongodb_timeout_seconds,
    )
    db = mongo[settings.mongodb_database]
    catalogue, stream, projection = Catalogue(db), EventStream(db), JobRequests(db)
    for part in (catalogue, stream, projection):
        await part.create_indexes()
    return mongo, catalogue, stream, projection


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the booking API; connections open in the lifespan, not here."""
    settings = settings or Settings()
    connections = Connections()
    relay_tasks: list[asyncio.Task[None]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo, catalogue, stream, projection = await open_storage(settings)
        connections.mongo = mongo
        amqp = await connect_amqp(settings.amqp_url, name="booking", heartbeat=settings.amqp_heartbeat_seconds)
        connections.amqp = amqp
        channel = await amqp.channel()
        await declare_events_exchange(channel)
        publisher = ConfirmedPublisher(amqp)
        relay = OutboxRelay(
            stream=stream,
            projection=projection,
            publisher=publisher,
            batch_size=settings.relay_batch_size,
            sweep_batch_size=settings.relay_sweep_batch_size,
            sweep_seconds=settings.relay_sweep_seconds,
            sweep_lease_seconds=settings.relay_sweep_lease_seconds,
            linger_seconds=settings.relay_linger_seconds,
            mark_seconds=settings.relay_mark_seconds,
        )
        app.state.deps = Deps(catalogue=catalogue, stream=stream, projection=projection, wake_relay=relay.wake)
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        relay_tasks.append(relay_task)
        log.info("booking.started", port=settings.http_port)
        try:
            yield
        finally:
            relay_task.cancel()
            with suppress(asyncio.CancelledError):
                await relay_task
            await within(relay.flush_marks(), what="relay.flush_marks")  # spares republishing on restart
            await within(relay.release_sweep(), what="relay.release_sweep")  # the next process may sweep at once
            await within(publisher.close(), what="publisher.close")
            await connections.close()

    async def relay_running() -> bool:
        return bool(relay_tasks) and not relay_tasks[0].done()

    app = service_app(
        "booking",
        settings,
        lifespan=lifespan,
        error_table=ERROR_STATUS,
        # The API needs its database and the relay task; a broker outage only delays publishing (the outbox).
        readiness={"mongodb": connections.mongo_ready, "relay": relay_running},
        reported={"rabbitmq": connections.broker_ready},
    )
    app.include_router(portal.router)
    app.include_router(admin.router)
    install_pages(app, settings)
    return app


def main_app() -> FastAPI:
    """Entry point for `uvicorn --factory booking.app:main_app`."""
    settings = Settings()
    configure_logging(service="booking", level=settings.log_level, json=settings.log_json)
    return create_app(settings)
