"""The FastAPI app of a consuming service: its API, plus one consumer run inside the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from pydantic import Field, model_validator
from pymongo.asynchronous.database import AsyncDatabase

from service_runtime.amqp import ConsumerTopology, connect_amqp
from service_runtime.consumer import EventConsumer, Handler, open_consumer
from service_runtime.errors import DomainError
from service_runtime.health import Connections, within
from service_runtime.mongo import connect_mongo
from service_runtime.settings import RetryDelaysMs, ServiceSettings
from service_runtime.web import LOCAL_PAGE_ORIGINS, CorsOrigins, require_public, service_app

log = structlog.get_logger(__name__)


class ConsumerServiceSettings(ServiceSettings):
    """What every consuming service reads besides the shared settings: its queue and retries, how long its effect
    writes wait to share a round trip, and the admin pages' origins its API answers (CORS)."""

    queue: str
    retry_delays_ms: RetryDelaysMs = (1_000, 5_000, 30_000, 120_000)
    defer_limit_seconds: float = Field(
        default=86_400.0, gt=0, description="How long a message may wait out our database's outage before it is parked."
    )
    write_linger_seconds: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How long an effect's write waits for others to share its database round trip (0: none).",
    )
    cors_origins: CorsOrigins = LOCAL_PAGE_ORIGINS

    @model_validator(mode="after")
    def _public_page_origins_outside_local(self) -> ConsumerServiceSettings:
        require_public(self.environment, "CORS_ORIGINS", self.cors_origins)
        return self

    def topology(self, binding_keys: tuple[str, ...]) -> ConsumerTopology:
        """The service's own queues, bound to `binding_keys` on booking's exchange."""
        return ConsumerTopology(
            queue=self.queue,
            binding_keys=binding_keys,
            retry_delays_ms=self.retry_delays_ms,
            defer_limit_seconds=self.defer_limit_seconds,
        )


Wiring = Callable[
    [FastAPI, AsyncDatabase[dict[str, Any]]], Awaitable[tuple[Mapping[str, Handler], Callable[[], Awaitable[None]]]]
]
"""Builds a service's stores on the app and returns its subscriptions and a close function."""


def create_consumer_app(
    *,
    name: str,
    settings: ServiceSettings,
    database: str,
    topology: ConsumerTopology,
    wiring: Wiring,
    routers: Sequence[APIRouter],
    error_table: Mapping[type[DomainError], int],
) -> FastAPI:
    """Build the app; on start it connects, wires the handlers and consumes; on SIGTERM it drains, then closes."""
    connections = Connections()
    consumers: list[EventConsumer] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = connect_mongo(
            settings.mongodb_url,
            app_name=name,
            max_pool_size=settings.mongodb_max_pool_size,
            timeout_seconds=settings.mongodb_timeout_seconds,
        )
        connections.mongo = mongo
        subscriptions, close = await wiring(app, mongo[database])
        amqp = await connect_amqp(settings.amqp_url, name=name, heartbeat=settings.amqp_heartbeat_seconds)
        connections.amqp = amqp
        consumer = await open_consumer(
            amqp,
            topology=topology,
            subscriptions=subscriptions,
            prefetch=settings.prefetch,
            database_ok=connections.mongo_ready,
        )
        consumers.append(consumer)
        # On SIGTERM, stop taking messages at once; in-flight ones finish before the lifespan closes anything.
        app.state.loop = asyncio.get_running_loop()
        app.state.on_exit_signal = [consumer.cancel]
        log.info(f"{name}.started", queue=topology.queue, subscriptions=sorted(subscriptions))
        try:
            yield
        finally:
            await consumer.stop()
            await within(close(), what=f"{name}.close")
            await connections.close()

    async def consuming() -> bool:
        return bool(consumers) and await consumers[0].is_consuming()

    app = service_app(
        name,
        settings,
        lifespan=lifespan,
        error_table=error_table,
        # The HTTP API (HOME notices, LOGS) needs the database only; consuming resumes by itself after a broker
        # outage (robust connection), and the queue backlog alert watches it.
        readiness={"mongodb": connections.mongo_ready},
        reported={"rabbitmq": connections.broker_ready, "consumer": consuming},
    )
    app.state.topology = topology
    for router in routers:
        app.include_router(router)
    return app
