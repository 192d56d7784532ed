"""The consumer chain's settlement against a real RabbitMQ (a vhost of its own): every delivery is settled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aio_pika
import pytest

from booking_contracts import CloudEvent
from service_runtime.amqp import ConfirmedPublisher, ConsumerTopology, connect_amqp, declare_consumer_topology
from service_runtime.consumer import ATTEMPT_HEADER, DEFERRED_SINCE_HEADER, REASON_HEADER, EventConsumer
from service_runtime.errors import Unavailable
from tests.support.events import cancelled_event
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

# Long enough that a retried message is still in its wait queue when the test looks.
TOPOLOGY = ConsumerTopology(queue="chain.events", binding_keys=("job_request.*",), retry_delays_ms=(60_000, 120_000))


@dataclass
class Chain:
    channel: aio_pika.abc.AbstractChannel
    publisher: ConfirmedPublisher
    consumer: EventConsumer

    async def deliver(self, *, headers: dict[str, Any]) -> str:
        event = cancelled_event()
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            headers=headers,
            message_id=str(event.id),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        assert await self.publisher.publish("", TOPOLOGY.queue, message)
        return str(event.id)

    async def waiting(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        declared = await self.channel.declare_queue(queue, passive=True)
        found = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found


@asynccontextmanager
async def a_chain(servers: Servers, handler: Any, topology: ConsumerTopology = TOPOLOGY) -> AsyncIterator[Chain]:
    with own_vhost(servers, "chain") as (_, url):
        connection = await connect_amqp(url, name="chain-test")
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=10)
            queue = await declare_consumer_topology(channel, topology)
            publisher = ConfirmedPublisher(connection)
            consumer = EventConsumer(
                queue=queue, topology=topology, subscriptions={"job_request.cancelled": handler}, publisher=publisher
            )
            await consumer.start()
            try:
                yield Chain(channel, publisher, consumer)
            finally:
                await consumer.stop(grace=5)
                await publisher.close()
        finally:
            await connection.close()


async def _fails(event: CloudEvent[Any]) -> None:
    raise RuntimeError("the handler failed")


@pytest.mark.parametrize("attempt", [-10, -1, "2", True, 2.5])
async def test_a_failing_delivery_with_a_nonsense_attempt_header_is_retried_as_a_first_attempt(
    servers: Servers, attempt: Any
) -> None:
    async with a_chain(servers, _fails) as chain:
        event_id = await chain.deliver(headers={ATTEMPT_HEADER: attempt})
        [retried] = await eventually(lambda: chain.waiting(TOPOLOGY.retry_queue(1)), timeout=10)
        assert (retried.message_id, (retried.headers or {})[ATTEMPT_HEADER]) == (event_id, 1)


async def test_a_delivery_whose_settlement_fails_is_handed_back_to_the_broker_not_left_unsettled(
    servers: Servers,
) -> None:
    async with a_chain(servers, _fails) as chain:
        original = chain.publisher.publish
        calls = 0

        async def publish(*args: Any, **kwargs: Any) -> bool:
            nonlocal calls
            calls += 1
            if calls == 2:  # the first is the test's own delivery; the chain's retry publish then breaks once
                raise RuntimeError("the channel broke while publishing the retry")
            return await original(*args, **kwargs)

        chain.publisher.publish = publish  # type: ignore[method-assign]
        event_id = await chain.deliver(headers={})
        # Handed back, delivered again, and this time retried as usual.
        [retried] = await eventually(lambda: chain.waiting(TOPOLOGY.retry_queue(1)), timeout=10)
        assert retried.message_id == event_id
        assert calls == 3
        await asyncio.sleep(0.2)
        assert chain.consumer._in_flight == set()  # nothing is left holding a delivery


def test_a_consumer_topology_without_retry_delays_is_refused() -> None:
    with pytest.raises(ValueError, match="retry delays"):
        ConsumerTopology(queue="q", binding_keys=("k",), retry_delays_ms=())
    with pytest.raises(ValueError, match="retry delays"):
        ConsumerTopology(queue="q", binding_keys=("k",), retry_delays_ms=(1000, 0))


async def _database_away(event: CloudEvent[Any]) -> None:
    raise Unavailable("the database is down")


async def test_a_message_waits_out_a_database_outage_but_is_parked_once_it_has_waited_past_the_limit(
    servers: Servers,
) -> None:
    topology = replace(TOPOLOGY, defer_limit_seconds=60)
    async with a_chain(servers, _database_away, topology) as chain:
        fresh = await chain.deliver(headers={})
        [deferred] = await eventually(lambda: chain.waiting(topology.retry_queue(1)), timeout=10)
        since = (deferred.headers or {})[DEFERRED_SINCE_HEADER]
        assert deferred.message_id == fresh and abs(since - time.time() * 1000) < 10_000  # no attempt used
        assert ATTEMPT_HEADER not in (deferred.headers or {})

        long_ago = int((time.time() - 61) * 1000)  # first deferred 61 s ago: past the limit
        stale = await chain.deliver(headers={DEFERRED_SINCE_HEADER: long_ago})
        [parked] = await eventually(lambda: chain.waiting(topology.dlq), timeout=10)
        assert parked.message_id == stale
        assert str((parked.headers or {})[REASON_HEADER]).startswith("deferred_too_long: waited 6")
