"""AMQP with aio-pika: robust connection, booking's topic exchange, consumer queues, confirmed publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import aio_pika
import stamina
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPConnectionError
from aiormq.exceptions import DeliveryError
from pamqp.commands import Basic

from booking_contracts import EXCHANGE

log = structlog.get_logger(__name__)


@stamina.retry(on=(AMQPConnectionError, OSError, ConnectionError), attempts=None, timeout=60.0, wait_max=2.0)
async def connect_amqp(url: str, *, name: str) -> AbstractRobustConnection:
    """Connect with retries: a robust connection reconnects by itself, but not on its FIRST attempt."""
    return await aio_pika.connect_robust(url, reconnect_interval=1, client_properties={"connection_name": name})


async def declare_events_exchange(channel: AbstractChannel) -> AbstractExchange:
    """Declare booking's durable topic exchange (idempotent)."""
    return await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)


@dataclass(frozen=True)
class ConsumerTopology:
    """A consumer's own queues: the work queue, one wait queue per retry delay, and a parking-lot DLQ."""

    queue: str
    binding_keys: tuple[str, ...]
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    delivery_limit: int = 20
    exchange: str = EXCHANGE

    @property
    def dlq(self) -> str:
        """Name of the parking-lot queue."""
        return f"{self.queue}.dlq"

    @property
    def dlx(self) -> str:
        """Exchange the work queue dead-letters into when a message passes its delivery limit."""
        return f"{self.queue}.dlx"

    def retry_queue(self, attempt: int) -> str:
        """Wait queue for a retry attempt (1-based); the delay is in its name so a new delay is a new queue."""
        return f"{self.queue}.retry.{self.retry_delays_ms[attempt - 1]}ms"

    @property
    def max_attempts(self) -> int:
        """Deliveries before a failing message is parked: the first try plus one per retry delay."""
        return len(self.retry_delays_ms) + 1


async def declare_consumer_topology(channel: AbstractChannel, topology: ConsumerTopology) -> AbstractQueue:
    """Declare (idempotently) the exchange, work queue with bindings, wait queues and DLQ; return the work queue."""
    exchange = await declare_events_exchange(channel)
    dlx = await channel.declare_exchange(topology.dlx, aio_pika.ExchangeType.FANOUT, durable=True)
    dlq = await channel.declare_queue(topology.dlq, durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(dlx)
    queue = await channel.declare_queue(
        topology.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": topology.delivery_limit,
            "x-dead-letter-exchange": topology.dlx,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    for key in topology.binding_keys:
        await queue.bind(exchange, routing_key=key)
    for delay in sorted(set(topology.retry_delays_ms)):
        await channel.declare_queue(
            f"{topology.queue}.retry.{delay}ms",
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": topology.queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
    return queue


@dataclass
class ConfirmedPublisher:
    """Publishes with publisher confirms and `mandatory`, many in flight; a returned message counts as not published."""

    connection: AbstractRobustConnection
    _channel: AbstractChannel | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def channel(self) -> AbstractChannel:
        """The confirm channel, opened on first use and again after it closed."""
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
            return self._channel

    async def publish(
        self, exchange: str, routing_key: str, message: aio_pika.Message, *, timeout: float = 10.0
    ) -> bool:
        """Publish one message; True when the broker confirmed it and routed it to a queue."""
        return (await self.publish_many(exchange, [(routing_key, message)], timeout=timeout))[0]

    async def publish_many(
        self, exchange: str, messages: Sequence[tuple[str, aio_pika.Message]], *, timeout: float = 10.0
    ) -> list[bool]:
        """Publish all at once and wait for every confirm; the result says, per message, if it was confirmed."""
        channel = await self.channel()
        target = await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
        results = await asyncio.gather(
            *(target.publish(message, routing_key=key, mandatory=True, timeout=timeout) for key, message in messages),
            return_exceptions=True,
        )
        confirmed = [isinstance(r, Basic.Ack) for r in results]
        for result in results:
            if isinstance(result, DeliveryError):
                log.warning("amqp.publish.returned", reason=str(result))
            elif isinstance(result, BaseException):
                log.warning("amqp.publish.failed", error=repr(result))
        return confirmed

    async def close(self) -> None:
        """Close the channel (the connection belongs to the caller)."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
