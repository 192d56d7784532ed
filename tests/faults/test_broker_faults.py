"""Broker faults: down during cancels, unroutable publishes, restarts, stalls and deleted queues."""

from __future__ import annotations

from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from booking.app import create_app as create_booking
from booking_contracts import EXCHANGE
from tests.faults.conftest import Stack
from tests.support.catalogue import submit_and_cancel
from tests.support.effects import cancellation_event_ids
from tests.support.mailpit import Mailpit
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


async def test_cancels_while_the_broker_is_down_are_stored_and_every_effect_arrives_once_it_is_back(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(*_host_port(servers.amqp_url)).start()
    try:
        booking_amqp = with_port(stack.vhost.amqp_url, proxy.port)
        business = await stack.start_all(booking={"amqp_url": booking_amqp})
        proxy.cut()
        await eventually(lambda: _not_ready(stack.http["booking"]), timeout=10)
        # /readyz says the broker is away; /readyz/api (the load balancer's probe) keeps the API in service.
        assert (await stack.http["booking"].get("/readyz")).status_code == 503
        api = await stack.http["booking"].get("/readyz/api")
        assert api.status_code == 200 and api.json()["checks"]["rabbitmq"] is False
        request_ids = [await submit_and_cancel(stack.http["booking"], business, days_ahead=3 + i) for i in range(5)]

        pending = await mongo[f"booking_{stack.run}"]["job_request_events"].count_documents({"published_at": None})
        assert pending == 10  # five submissions and five cancellations wait in the outbox
        metrics = (await stack.http["booking"].get("/metrics")).text
        assert "outbox_unconfirmed_publishes_total" in metrics

        proxy.heal()
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", request_ids)
        assert len(event_ids) == 5
        effects = await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=30)
        assert all(effects.emails[e] == effects.notices[e] == effects.logs[e] == 1 for e in event_ids)
    finally:
        await proxy.close()


async def test_an_unroutable_event_stays_pending_and_is_published_once_a_queue_is_bound(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # Booking alone in its virtual host: nothing is bound to the exchange, so the broker returns every publish.
    await stack.start("booking", create_booking(stack.booking_settings()))
    business = await stack.seed()
    request_id = await submit_and_cancel(stack.http["booking"], business)
    events = mongo[f"booking_{stack.run}"]["job_request_events"]

    async def unconfirmed() -> float:
        text = (await stack.http["booking"].get("/metrics")).text
        line = next(line for line in text.splitlines() if line.startswith("outbox_unconfirmed_publishes_total"))
        return float(line.split()[-1])

    await eventually(lambda: _above(unconfirmed, 0), timeout=10)
    assert await events.count_documents({"stream_id": request_id, "published_at": None}) == 2

    connection = await aio_pika.connect_robust(stack.vhost.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("late-subscriber", durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, "job_request.#")
        await eventually(lambda: _none_pending(events, request_id), timeout=10)
        got = [await queue.get(timeout=5), await queue.get(timeout=5)]
        assert sorted(m.type or "" for m in got) == ["job_request.cancelled", "job_request.submitted"]
    finally:
        await connection.close()


async def test_after_a_broker_connection_reset_every_consumer_consumes_again(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(*_host_port(servers.amqp_url)).start()
    try:
        via_proxy = with_port(stack.vhost.amqp_url, proxy.port)
        business = await stack.start_all(notifier={"amqp_url": via_proxy}, audit={"amqp_url": via_proxy})
        queues = [stack.apps[n].state.topology.queue for n in ("notifier", "audit")]
        # The management API's figures lag by up to its statistics interval (5 s by default).
        await eventually(lambda: _all_equal(stack.vhost, queues, 1), timeout=15)

        proxy.cut()  # the broker goes away...
        await eventually(lambda: _all_equal(stack.vhost, queues, 0), timeout=15)
        assert not await _ready(stack.http["notifier"])
        proxy.heal()  # ...and comes back: nobody restarts the services
        await eventually(lambda: _all_equal(stack.vhost, queues, 1), timeout=30)
        await eventually(lambda: _ready(stack.http["notifier"]), timeout=10)

        request_id = await submit_and_cancel(stack.http["booking"], business)
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])
        await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=20)
    finally:
        await proxy.close()


async def test_a_stalled_broker_connection_is_noticed_and_consumption_resumes(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(*_host_port(servers.amqp_url)).start()
    try:
        via_proxy = with_port(stack.vhost.amqp_url, proxy.port)
        business = await stack.start_all(notifier={"amqp_url": via_proxy})
        queue = stack.apps["notifier"].state.topology.queue
        proxy.stall()
        # Missed heartbeats (2 s here) make the client drop the connection and report not ready.
        await eventually(lambda: _not_ready(stack.http["notifier"]), timeout=20)
        proxy.reset()
        await eventually(lambda: _all_equal(stack.vhost, [queue], 1), timeout=30)
        request_id = await submit_and_cancel(stack.http["booking"], business)
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])
        await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=20)
    finally:
        await proxy.close()


async def test_a_deleted_work_queue_is_declared_again_and_consumed(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    business = await stack.start_all()
    queue = stack.apps["notifier"].state.topology.queue
    await stack.vhost.delete_queue(queue)
    await eventually(lambda: _all_equal(stack.vhost, [queue], 1), timeout=30)
    await eventually(lambda: _ready(stack.http["notifier"]), timeout=10)
    request_id = await submit_and_cancel(stack.http["booking"], business)
    event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])
    await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=20)


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


async def _ready(http: Any) -> bool:
    return bool((await http.get("/readyz")).status_code == 200)


async def _not_ready(http: Any) -> bool:
    return not await _ready(http)


async def _above(probe: Any, value: float) -> bool:
    return bool(await probe() > value)


async def _none_pending(events: Any, request_id: str) -> bool:
    return bool(await events.count_documents({"stream_id": request_id, "published_at": None}) == 0)


async def _all_equal(vhost: Any, queues: list[str], consumers: int) -> bool:
    return all([await vhost.consumers(q) == consumers for q in queues])
