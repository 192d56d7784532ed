"""Running a service's app in-process (with its lifespan) against the real servers, on its own database and queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import httpx
from fastapi import FastAPI

from service_runtime.amqp import ConsumerTopology


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's lifespan and give an HTTP client that calls it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def delete_topology(connection: aio_pika.abc.AbstractConnection, topology: ConsumerTopology) -> None:
    """Remove a test's queues and dead-letter exchange so that no orphan queue keeps collecting events."""
    channel = await connection.channel()
    try:
        for name in (
            topology.queue,
            topology.dlq,
            *(f"{topology.queue}.retry.{d}ms" for d in topology.retry_delays_ms),
        ):
            await channel.queue_delete(name)
        await channel.exchange_delete(topology.dlx)
    finally:
        await channel.close()


async def publish_event(
    connection: aio_pika.abc.AbstractConnection,
    body: bytes,
    *,
    routing_key: str,
    message_id: str = "",
    correlation_id: str = "",
) -> None:
    """Publish raw bytes to booking's exchange as the relay would (persistent, confirmed)."""
    from booking_contracts import CONTENT_TYPE, EXCHANGE

    channel = await connection.channel(publisher_confirms=True)
    try:
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(
                body,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id or None,
                correlation_id=correlation_id or None,
                type=routing_key,
            ),
            routing_key=routing_key,
        )
    finally:
        await channel.close()


async def parked(connection: aio_pika.abc.AbstractConnection, dlq: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message from a dead-letter queue (acked: the test owns the queue)."""
    channel = await connection.channel()
    try:
        queue = await channel.get_queue(dlq)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
        return found
    finally:
        await channel.close()
