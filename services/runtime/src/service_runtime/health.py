"""A service's connections: readiness (database answers, broker connected) and a bounded close."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustConnection
from pymongo import AsyncMongoClient

from service_runtime.mongo import ping

log = structlog.get_logger(__name__)


async def within(step: Awaitable[Any], *, seconds: float = 5.0, what: str) -> None:
    """Await a shutdown step for at most `seconds`: a server that went away must not hold the exit."""
    try:
        await asyncio.wait_for(step, timeout=seconds)
    except Exception as exc:  # noqa: BLE001 - shutting down: report and go on
        log.warning("shutdown.step_failed", step=what, error=repr(exc))


@dataclass
class Connections:
    """The clients a service opened in its lifespan (None before start-up finished)."""

    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    amqp: AbstractRobustConnection | None = None

    async def mongo_ready(self) -> bool:
        """The database answers a ping."""
        return self.mongo is not None and await ping(self.mongo)

    async def broker_ready(self) -> bool:
        """The broker connection is up (a robust connection clears `connected` while it reconnects)."""
        return self.amqp is not None and not self.amqp.is_closed and self.amqp.connected.is_set()

    async def close(self) -> None:
        """Close the broker connection, then the database client, each within a bound."""
        if self.amqp is not None:
            await within(self.amqp.close(), what="amqp.close")
        if self.mongo is not None:
            await within(self.mongo.close(), what="mongo.close")
