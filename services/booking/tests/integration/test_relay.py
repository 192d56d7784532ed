"""The outbox relay against a real RabbitMQ (a vhost of its own) and the MongoDB-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from booking import domain
from booking.events import EventStream
from booking.handlers import utc_now
from booking.relay import OutboxRelay
from booking.store import JobRequests
from service_runtime.amqp import ConfirmedPublisher, Outcome, connect_amqp, declare_events_exchange
from tests.support.ids import unique
from tests.support.requests import CLIENT, a_request
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@dataclass
class Outbox:
    stream: EventStream
    projection: JobRequests
    publisher: ConfirmedPublisher
    events: Any  # the stream's collection, to look at the marks
    received: list[str]  # event ids, in the order a probe queue got them

    def relay(self, **options: Any) -> OutboxRelay:
        return OutboxRelay(stream=self.stream, projection=self.projection, publisher=self.publisher, **options)

    async def cancellations(self, n: int) -> list[dict[str, Any]]:
        """Store n cancellations (with their projections) as the handlers do; return the stored events."""
        stored = []
        for _ in range(n):
            # Cancelled now: the sweep goes by the event's time, and leaves what is younger than its grace alone.
            cancelled = domain.cancel(replace(a_request(), id=unique("jr")), by=CLIENT, now=utc_now(), reason=None)
            stored.append(await self.stream.append(cancelled, correlation_id="c"))
            await self.projection.save(cancelled)
        return stored

    async def submissions(self, n: int) -> None:
        """Store n submission events (no projections: only the relay reads them here)."""
        for _ in range(n):
            await self.stream.append(replace(a_request(), id=unique("jr")), correlation_id="c")

    async def pending(self) -> int:
        return await self.events.count_documents({"published_at": None})


@asynccontextmanager
async def an_outbox(
    servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], *, probe_binding: str = "#"
) -> AsyncIterator[Outbox]:
    """An event stream in a database of its own, a relay's publisher on a vhost of its own, and a probe queue bound
    to `probe_binding` that records what arrives (events no queue takes are returned to the publisher)."""
    db = mongo[unique("relay").replace("-", "_")]
    stream, projection = EventStream(db), JobRequests(db)
    await stream.create_indexes()
    await projection.create_indexes()
    with own_vhost(servers, "relay") as (_, url):
        connection = await connect_amqp(url, name="relay-test")
        channel = await connection.channel()
        exchange = await declare_events_exchange(channel)
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind(exchange, probe_binding)
        received: list[str] = []

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                received.append(str(message.message_id))

        await probe.consume(collect)
        publisher = ConfirmedPublisher(connection)
        try:
            yield Outbox(stream, projection, publisher, db["job_request_events"], received)
        finally:
            await publisher.close()
            await connection.close()
            await mongo.drop_database(db.name)


@pytest.fixture
async def outbox(servers: Servers, mongo: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[Outbox]:
    async with an_outbox(servers, mongo) as made:
        yield made


async def _running(relay: OutboxRelay) -> asyncio.Task[None]:
    return asyncio.create_task(relay.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def test_handed_over_events_are_published_once_and_their_marks_go_together(outbox: Outbox) -> None:
    relay = outbox.relay(sweep_seconds=2.0, mark_seconds=2.0)  # a 2 s window: room for a loaded machine
    task = await _running(relay)
    try:
        await asyncio.sleep(0.1)  # the first sweep, of an empty outbox, is behind us
        stored = await outbox.cancellations(6)
        for event in stored[:3]:
            relay.wake(event)
        await eventually(lambda: _received(outbox, 3), timeout=5)
        for event in stored[3:]:
            relay.wake(event)
        await eventually(lambda: _received(outbox, 6), timeout=5)
        assert await outbox.pending() == 6  # confirmed, not marked yet: the marks wait for each other

        await eventually(lambda: _none_pending(outbox), timeout=10)
        marked = {e["published_at"] for e in await outbox.events.find({}, {"published_at": 1}).to_list()}
        assert len(marked) == 1  # one update for the six
        await asyncio.sleep(4.5)  # sweeps come and go (grace 4 s): none of them republishes
        assert sorted(outbox.received) == sorted(e["_id"] for e in stored)
    finally:
        await _stop(task)


async def test_a_stopping_relay_writes_the_marks_it_holds(outbox: Outbox) -> None:
    relay = outbox.relay(sweep_seconds=5.0, mark_seconds=5.0)
    task = await _running(relay)
    try:
        await asyncio.sleep(0.1)
        for event in await outbox.cancellations(2):
            relay.wake(event)
        await eventually(lambda: _received(outbox, 2), timeout=5)
        assert await outbox.pending() == 2
    finally:
        await _stop(task)
    await relay.flush_marks()  # what booking's shutdown does
    assert await outbox.pending() == 0


async def test_marks_that_fail_to_be_written_leave_the_events_to_the_sweep(outbox: Outbox) -> None:
    relay = outbox.relay(sweep_seconds=0.4, mark_seconds=0.1)
    failing = True
    original, original_each = outbox.stream.mark_published, outbox.stream.mark_each_published

    async def mark_published(event_ids: list[str], **kwargs: Any) -> None:
        if failing:
            raise ConnectionError("database unreachable")  # the write of the marks fails
        await original(event_ids, **kwargs)

    async def mark_each_published(event_ids: list[str], **kwargs: Any) -> None:
        if failing:
            raise ConnectionError("database unreachable")  # and so do the sweep's, on a slow run
        await original_each(event_ids, **kwargs)

    outbox.stream.mark_published = mark_published  # type: ignore[method-assign]
    outbox.stream.mark_each_published = mark_each_published  # type: ignore[method-assign]
    task = await _running(relay)
    try:
        await asyncio.sleep(0.1)
        stored = await outbox.cancellations(2)
        for event in stored:
            relay.wake(event)
        await eventually(lambda: _received(outbox, 2), timeout=5)
        await asyncio.sleep(0.3)
        assert await outbox.pending() == 2
        failing = False
        # The sweep finds them after its grace (2 x 0.4 s), publishes them again and this time marks them.
        await eventually(lambda: _none_pending(outbox), timeout=10)
        times = Counter(outbox.received)
        assert set(times) == {e["_id"] for e in stored}
        assert min(times.values()) >= 2  # published again, since the first marks were never written
    finally:
        await _stop(task)


async def test_a_backlog_left_by_an_outage_is_published_once_in_reads_of_many_and_every_event_is_marked(
    outbox: Outbox,
) -> None:
    stored = await outbox.cancellations(60)  # stored while the broker was away: nobody handed them over
    relay = outbox.relay(batch_size=10, sweep_batch_size=25, sweep_seconds=0.2)
    await asyncio.sleep(0.5)  # older than the sweep's grace (2 x 0.2 s)

    assert [await relay.sweep() for _ in range(4)] == [(25, 25), (25, 25), (10, 10), (0, 0)]  # (read, published)
    await eventually(lambda: _received(outbox, 60), timeout=5)
    assert sorted(outbox.received) == sorted(e["_id"] for e in stored)
    assert await outbox.pending() == 0
    assert await outbox.events.count_documents({"relay_pending": True}) == 0


async def test_sweep_marks_that_fail_leave_the_events_pending_for_the_next_sweep(outbox: Outbox) -> None:
    stored = await outbox.cancellations(12)
    relay = outbox.relay(batch_size=5, sweep_batch_size=20, sweep_seconds=0.2)
    await asyncio.sleep(0.5)
    original = outbox.stream.mark_each_published
    calls = 0

    async def mark_each_published(event_ids: list[str], **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("database unreachable")  # the second chunk's marks fail
        await original(event_ids, **kwargs)

    outbox.stream.mark_each_published = mark_each_published  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await relay.sweep()
    assert await outbox.pending() == 7  # the first chunk is marked; the rest waits for the next sweep
    assert await relay.sweep() == (7, 7)
    assert await outbox.pending() == 0
    await eventually(lambda: _received(outbox, 17), timeout=5)
    await asyncio.sleep(0.2)
    times = Counter(outbox.received)
    assert set(times) == {e["_id"] for e in stored}
    assert sorted(times.values()) == [1] * 7 + [2] * 5  # only the chunk whose marks failed went out twice


async def test_an_event_the_broker_keeps_refusing_does_not_hold_up_the_events_after_it(outbox: Outbox) -> None:
    stored = await outbox.cancellations(12)
    stuck = stored[0]["_id"]
    relay = outbox.relay(batch_size=5, sweep_batch_size=20, sweep_seconds=0.2)
    await asyncio.sleep(0.5)
    original = outbox.publisher.publish_each

    async def publish_each(exchange: str, messages: Any, **kwargs: Any) -> list[Outcome]:
        # The broker refuses this one message every time.
        kept = [(key, message) for key, message in messages if message.message_id != stuck]
        outcomes = iter(await original(exchange, kept, **kwargs))
        return [Outcome.FAILED if message.message_id == stuck else next(outcomes) for _, message in messages]

    outbox.publisher.publish_each = publish_each  # type: ignore[method-assign]
    assert await relay.sweep() == (12, 11)  # every chunk went out, the refused event's too
    assert await outbox.pending() == 1
    await eventually(lambda: _received(outbox, 11), timeout=5)
    assert stuck not in outbox.received
    assert await relay.holds_sweep()  # some got through: this replica keeps sweeping


class Clock:
    """A clock the test moves: the sweep's slot and grace go by it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_of_two_replicas_only_the_one_holding_the_slot_sweeps_and_the_other_takes_the_next_slot(
    outbox: Outbox,
) -> None:
    lease = 30.0
    slot_start = datetime.fromtimestamp((utc_now().timestamp() // lease + 120) * lease, UTC)  # an hour ahead
    clock = Clock(slot_start + timedelta(seconds=10))  # every stored event is older than the grace by then
    replicas = [outbox.relay(sweep_seconds=0.2, sweep_lease_seconds=lease, clock=clock) for _ in range(2)]
    backlog = await outbox.cancellations(40)
    tasks = [await _running(relay) for relay in replicas]
    try:
        await eventually(lambda: _received(outbox, 40), timeout=10)
        await eventually(lambda: _none_pending(outbox), timeout=10)
        await asyncio.sleep(1.0)  # five more sweep ticks each
        assert sorted(outbox.received) == sorted(e["_id"] for e in backlog)  # once each: one replica swept
        holder = [relay for relay in replicas if await relay.holds_sweep()]
        assert len(holder) == 1

        # The holder stops; what is left pending waits for the next slot, which the other replica takes.
        await _stop(tasks[replicas.index(holder[0])])
        left = await outbox.cancellations(5)
        await asyncio.sleep(1.0)
        assert len(outbox.received) == 40
        clock.now = slot_start + timedelta(seconds=lease + 1)
        await eventually(lambda: _received(outbox, 45), timeout=10)
        assert sorted(outbox.received) == sorted(e["_id"] for e in backlog + left)
    finally:
        for task in tasks:
            await _stop(task)


async def test_a_relay_that_stops_gives_its_sweep_slot_back_to_the_next_replica_at_once(outbox: Outbox) -> None:
    clock = Clock(datetime(2027, 1, 4, 9, 0, 10, tzinfo=UTC))
    first, second = (outbox.relay(sweep_lease_seconds=30, clock=clock) for _ in range(2))
    assert await first.holds_sweep()
    assert not await second.holds_sweep()
    await first.release_sweep()
    assert await second.holds_sweep()  # the running replica asks again at its next sweep, and has it
    assert not await first.holds_sweep()


async def test_a_replica_whose_publishes_the_broker_refuses_gives_the_sweep_to_one_that_can_publish(
    outbox: Outbox, servers: Servers
) -> None:
    clock = Clock(datetime.fromtimestamp((utc_now().timestamp() // 30 + 120) * 30 + 10, UTC))  # mid-slot, ahead
    backlog = await outbox.cancellations(8)
    with own_vhost(servers, "relay-refused") as (_, url):
        # A vhost without the events exchange: the broker refuses every publish from there.
        connection = await connect_amqp(url, name="relay-refused")
        refused = ConfirmedPublisher(connection)
        broken = OutboxRelay(
            stream=outbox.stream, projection=outbox.projection, publisher=refused, sweep_seconds=0.2, clock=clock
        )
        healthy = outbox.relay(sweep_seconds=0.2, clock=clock)
        assert await broken.holds_sweep()  # it has the slot first
        tasks = [await _running(broken)]
        try:
            await asyncio.sleep(0.5)
            assert outbox.received == []
            tasks.append(await _running(healthy))
            await eventually(lambda: _received(outbox, 8), timeout=10)
            await eventually(lambda: _none_pending(outbox), timeout=5)
            assert sorted(outbox.received) == sorted(e["_id"] for e in backlog)
            assert await healthy.holds_sweep()
            assert not await broken.holds_sweep()  # it does not ask again within the slot it gave up
        finally:
            for task in tasks:
                await _stop(task)
            await refused.close()
            await connection.close()


async def _received(outbox: Outbox, n: int) -> bool:
    return len(outbox.received) >= n


async def _pending_exactly(outbox: Outbox, n: int) -> bool:
    return await outbox.events.count_documents({"relay_pending": True}) == n


async def _none_pending(outbox: Outbox) -> bool:
    return await outbox.pending() == 0


async def test_many_events_no_queue_takes_do_not_hold_back_the_events_behind_them(
    servers: Servers, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # No queue takes submitted events (audit not deployed): only cancellations are routed.
    async with an_outbox(servers, mongo, probe_binding="job_request.cancelled") as outbox:
        # 45 unroutable submissions are the oldest pending events; 5 cancellations come after them.
        await outbox.submissions(45)
        cancellations = [e["_id"] for e in await outbox.cancellations(5)]
        relay = outbox.relay(batch_size=10, sweep_batch_size=20, sweep_seconds=0.2)
        await asyncio.sleep(0.5)  # older than the sweep's grace
        task = await _running(relay)
        try:
            await eventually(lambda: len(outbox.received) >= 5, timeout=10)
            # A message can arrive before its mark is written: wait for the marks too, not just the deliveries.
            await eventually(lambda: _pending_exactly(outbox, 45), timeout=10)
        finally:
            await _stop(task)
        assert sorted(outbox.received) == sorted(cancellations)
        assert await outbox.events.count_documents({"relay_pending": True}) == 45


async def test_sweeps_whose_every_event_no_queue_takes_come_less_and_less_often(
    servers: Servers, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    # Only submissions are pending and nothing takes them: each sweep reads and republishes all of them, in vain.
    async with an_outbox(servers, mongo, probe_binding="job_request.cancelled") as outbox:
        await outbox.submissions(10)
        relay = outbox.relay(batch_size=10, sweep_batch_size=20, sweep_seconds=0.1)
        await asyncio.sleep(0.3)  # older than the sweep's grace
        before = _unconfirmed()
        task = await _running(relay)
        try:
            await asyncio.sleep(4.0)
        finally:
            await _stop(task)
        sweeps = (_unconfirmed() - before) / 10
        # Without the backoff a sweep every 0.3 s (three sweep intervals): ~13. With it 0.3, 0.6, 1.2, 2.4 s: 4.
        assert 1 <= sweeps <= 6, sweeps
        assert await outbox.events.count_documents({"relay_pending": True}) == 10  # still pending, none lost


def _unconfirmed() -> float:
    return REGISTRY.get_sample_value("outbox_unconfirmed_publishes_total") or 0.0


async def test_a_relay_cancelled_in_the_same_turn_as_a_wake_up_stops(outbox: Outbox) -> None:
    # Shutdown right after a request: the lifespan cancels the relay just as the request's event wakes it.
    relay = outbox.relay(sweep_seconds=2.0)
    task = await _running(relay)
    await asyncio.sleep(0.2)  # past its first sweep, waiting to be woken
    [event] = await outbox.cancellations(1)
    relay.wake(event)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    if not done:
        task.cancel()  # do not leave it running behind the test
    assert done == {task}, "the relay swallowed its cancellation and kept running"
    assert task.cancelled()


async def test_the_unroutable_backoff_stays_at_its_cap_however_long_the_binding_is_missing(outbox: Outbox) -> None:
    relay = outbox.relay(sweep_seconds=2.0)
    assert await relay.holds_sweep()
    relay._unroutable_sweeps = 5000  # days of sweeps in a row that no queue took (2**5000 s would overflow a float)
    await relay._give_up_sweep(unroutable=True)
    assert 59 <= relay._yielded_until - time.monotonic() <= 60
    assert relay._held_slot is None  # and it gave the slot back


async def test_a_broker_outage_ends_the_unroutable_backoff_so_the_events_it_leaves_go_out_once_it_is_back(
    outbox: Outbox,
) -> None:
    relay = outbox.relay(sweep_seconds=0.2)
    assert await relay.holds_sweep()
    relay._unroutable_sweeps = 10
    await relay._give_up_sweep(unroutable=True)  # a binding was missing for a while: the next sweep in 60 s
    original = outbox.publisher.publish_each
    broker_down = True
    failed = asyncio.Event()

    async def publish_each(exchange: str, messages: Any, **kwargs: Any) -> list[Outcome]:
        if broker_down:
            failed.set()
            return [Outcome.FAILED] * len(messages)
        return await original(exchange, messages, **kwargs)

    outbox.publisher.publish_each = publish_each  # type: ignore[method-assign]
    task = await _running(relay)
    try:
        [event] = await outbox.cancellations(1)
        relay.wake(event)  # its publish fails: the event stays pending, for the sweep
        await asyncio.wait_for(failed.wait(), timeout=5)
        assert relay._unroutable_sweeps == 0  # a later missing binding backs off from the start again
        broker_down = False
        # The sweep takes it within its grace and the short wait (~1 s), not after the backoff's 60 s.
        await eventually(lambda: _received(outbox, 1), timeout=10)
        await eventually(lambda: _none_pending(outbox), timeout=5)
    finally:
        await _stop(task)
    assert outbox.received == [event["_id"]]
