"""The outbox relay: publishes stored events with confirms, many in flight; a periodic sweep catches the rest."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from uuid import uuid4

import aio_pika
import structlog
from prometheus_client import Counter, Gauge

from booking.codec import from_document
from booking.events import Document, EventStream
from booking.store import JobRequests
from booking_contracts import CONTENT_TYPE, EXCHANGE, SOURCE
from service_runtime.amqp import ConfirmedPublisher, Outcome

log = structlog.get_logger(__name__)

PUBLISHED = Counter("outbox_published_events", "Events confirmed by the broker.", ["event_type"])
UNROUTABLE_BACKOFF_MAX_SECONDS = 60.0
"""The longest a relay waits before sweeping again after sweeps whose every event no queue took."""

NOT_CONFIRMED = Counter("outbox_unconfirmed_publishes", "Publishes not confirmed (broker down, nacked or unroutable).")
BACKLOG = Gauge("outbox_backlog_events", "Stored events not yet confirmed by the broker (at the last sweep).")
BACKLOG_AGE = Gauge(
    "outbox_backlog_oldest_age_seconds", "Age of the oldest event not yet confirmed (at the last sweep)."
)


class Swept(NamedTuple):
    """What one sweep read, and how many of those the broker confirmed."""

    read: int
    published: int


class _Page(NamedTuple):
    """Where a sweep's next read starts: at `occurred_at`, besides the events of that instant already read (many
    events can share an instant: ids are not ordered, and the time is to the millisecond)."""

    occurred_at: datetime
    ids: frozenset[str]


def amqp_message(doc: Document) -> aio_pika.Message:
    """The AMQP message of a stored event: CloudEvents structured mode, persistent, ids in the properties."""
    return aio_pika.Message(
        doc["payload"].encode(),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=doc["_id"],
        correlation_id=_short_string(doc.get("correlation_id") or None),
        type=doc["type"],
        app_id=SOURCE.strip("/"),
        timestamp=doc["occurred_at"],
    )


def _short_string(value: str | None) -> str | None:
    """At most the 255 bytes an AMQP property may hold (the API keeps ids to 128 characters; older events may not)."""
    return value.encode()[:255].decode(errors="ignore") if value is not None else None


class OutboxRelay:
    """Publishes stored events with confirms, many in flight.

    A request handler hands over the event it has just stored (once the projection is written), so the usual path
    publishes from memory within milliseconds and costs no query: under load a pass carries what arrived while the
    previous one was on the wire, plus `linger_seconds`. Every `sweep_seconds` a sweep reads from the database
    what is still pending after twice that: the events of a writer that crashed, of a replica that stopped, or
    that the broker did not confirm. It repairs their projections first. Marks go on the event, a field only the
    relay writes, gathered for up to `mark_seconds` into one update: on FerretDB v1 each update command reads
    every pending event, so one per publish pass cost more than the publishing. A crash before the marks are
    written only republishes those events (consumers drop duplicates by event id).

    The sweep is the recovery path (a broker outage leaves many events pending): it reads up to
    `sweep_batch_size` events at once and marks them one lookup by id each. On FerretDB v1 every read of the pending
    events and every `update_many` of them reads all of them (no limit or `$in` goes down to PostgreSQL), so reading
    500 at a time and marking them in one update made recovery quadratic with a large factor: 20,000 pending events
    took 182 s, now 44 s (bench/README.md; each read still reads every pending event there, ten times fewer reads).
    While reads come back full, a sweep reads on from where the last one ended, so events the broker keeps refusing
    (unroutable while no queue takes their type) do not hold back those behind them; a sweep the broker confirmed
    none of makes the relay give its slot away (below).

    With several booking replicas, one sweeps at a time: the one that takes the current slot of
    `sweep_lease_seconds` (a unique insert per slot). Without that, after an outage every replica read, published
    and marked the whole backlog. A replica that dies while it holds the slot leaves the sweep to whichever
    replica takes the next one (within `sweep_lease_seconds`); one that stops gives its slot back at once. The
    handed-over path does not wait for any slot.
    """

    def __init__(
        self,
        *,
        stream: EventStream,
        projection: JobRequests,
        publisher: ConfirmedPublisher,
        batch_size: int = 500,
        sweep_batch_size: int = 5000,
        sweep_seconds: float = 2.0,
        sweep_lease_seconds: float = 30.0,
        linger_seconds: float = 0.003,
        mark_seconds: float = 0.25,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._stream = stream
        self._projection = projection
        self._publisher = publisher
        self._batch_size = batch_size
        self._sweep_batch_size = max(sweep_batch_size, batch_size)
        self._sweep_seconds = sweep_seconds
        self._linger_seconds = linger_seconds
        self._grace = timedelta(seconds=2 * sweep_seconds)
        self._lease_seconds = sweep_lease_seconds
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._held_slot: int | None = None  # the sweep's slot this relay holds
        self._yielded_until = -math.inf  # after giving the slot up, this relay asks for it again only after this
        self._unroutable_sweeps = 0  # sweeps in a row whose every event was returned unroutable
        self._mark_seconds = min(mark_seconds, sweep_seconds)  # marks land well before the sweep would see them
        self._confirmed: list[str] = []
        self._marks_due = math.inf
        self._clock = clock
        self._wake = asyncio.Event()
        self._ready: list[Document] = []
        self._last_sweep = -math.inf
        self._repairs = asyncio.Semaphore(8)

    def wake(self, event: Document) -> None:
        """Publish `event` (just stored, its projection written) soon."""
        self._ready.append(event)
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled; a failing pass is logged and what it held is left to the next sweep."""
        while True:
            due = min(self._last_sweep + self._sweep_seconds, self._marks_due) - time.monotonic()
            if due > 0:
                try:
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes in the same turn as
                    # the wake-up (a request just handled when shutdown begins), and this loop then never stopped.
                    async with asyncio.timeout(due):
                        await self._wake.wait()
                    await asyncio.sleep(self._linger_seconds)
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                await self._publish_handed_over()
                if time.monotonic() - self._last_sweep >= self._sweep_seconds:
                    self._last_sweep = time.monotonic()
                    await self.flush_marks()  # the backlog counts what the broker has not confirmed, no more
                    # Every replica measures, so that the backlog alert holds while the broker is away and the
                    # sweep changes hands (on MongoDB two index reads; on FerretDB v1 a read of every pending event).
                    await self._measure_backlog()
                    if await self.holds_sweep():
                        await self._sweep_while_full()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or database down: the sweep tries again
                log.warning("relay.pass_failed", error=repr(exc))
                await asyncio.sleep(min(self._sweep_seconds, 1.0))

    async def _sweep_while_full(self) -> None:
        """Sweep read after read while each comes back full (a long recovery), each read starting where the previous
        one ended: events the broker refuses (unroutable while no queue takes their type) do not hold back those
        behind them."""
        page: _Page | None = None
        read = published = 0
        failed = False
        while True:
            swept, page, refused = await self._sweep_page(page)
            read, published, failed = read + swept.read, published + swept.published, failed or refused
            if page is None or not await self.holds_sweep():
                break  # done (the last read was not full): the next tick starts from the oldest again
            await self._publish_handed_over()  # it keeps moving during a long recovery, and its marks too
        if published or not read:
            self._unroutable_sweeps = 0  # something went out, or nothing is left behind
        if read and not published:
            # The broker took nothing: leave the slot to a replica that may do better.
            await self._give_up_sweep(unroutable=not failed)

    async def holds_sweep(self) -> bool:
        """True when this relay has the sweep for the current slot.

        A holder asks the database once per slot; the others ask at each of their sweeps, so that a slot given
        back (a replica stopping, or failing to publish) is taken at the next tick of another.
        """
        slot = int(self._clock().timestamp() // self._lease_seconds)
        if slot == self._held_slot:
            return True
        if time.monotonic() < self._yielded_until:
            return False
        if await self._stream.take_sweep_slot(slot, holder=self._holder, at=self._clock()):
            self._held_slot = slot
            log.info("relay.sweep_slot_taken", slot=slot)
            return True
        return False

    async def release_sweep(self) -> None:
        """Give back any sweep slot this relay holds (on shutdown: another replica or the next process sweeps)."""
        self._held_slot = None
        await self._stream.release_sweep_slots(holder=self._holder)

    async def _give_up_sweep(self, *, unroutable: bool) -> None:
        """After a sweep the broker confirmed none of: give the slot back, and ask again only after three sweep
        intervals, so that another replica can take it first (alone, this one takes it back then).

        When every event it read was returned unroutable (no queue bound for their types: a deployment mistake that
        waiting does not mend), each sweep in a row waits twice as long, up to UNROUTABLE_BACKOFF_MAX_SECONDS: every
        such sweep reads and republishes the whole backlog. A broker that is down or refusing keeps the short wait,
        so that the backlog goes out soon after it is back, and a handed-over publish that fails so ends the backoff
        (an outage during it). A database failure does not give the slot up: every
        replica shares the database, none would do better.
        """
        if self._held_slot is None:
            return
        wait = 3 * self._sweep_seconds
        if unroutable:
            wait = min(wait * 2 ** min(self._unroutable_sweeps, 16), max(wait, UNROUTABLE_BACKOFF_MAX_SECONDS))
            self._unroutable_sweeps += 1
            log.warning("relay.sweep_all_unroutable", wait_seconds=wait)
        self._yielded_until = time.monotonic() + wait
        try:
            await self.release_sweep()
        except Exception as exc:  # noqa: BLE001 - the database may be what failed; the slot then runs out by itself
            log.warning("relay.release_sweep_failed", error=repr(exc))

    def _end_unroutable_backoff(self) -> None:
        """The broker failed a publish (down, refusing, not confirming): what it leaves pending is for the sweep, which
        must come soon after the broker is back, not at the end of a long wait for a missing binding."""
        self._unroutable_sweeps = 0
        self._yielded_until = min(self._yielded_until, time.monotonic() + 3 * self._sweep_seconds)

    async def _publish_handed_over(self) -> None:
        """Publish every event handed over, and write the marks that are due."""
        while self._ready:
            await self.publish_ready()
        if time.monotonic() >= self._marks_due:
            await self.flush_marks()

    async def publish_ready(self) -> int:
        """Publish (up to a batch of) the events handed over; return how many the broker confirmed."""
        docs, self._ready = self._ready[: self._batch_size], self._ready[self._batch_size :]
        done, failed = await self._publish_each(docs)
        if failed:
            self._end_unroutable_backoff()
        if done and not self._confirmed:
            self._marks_due = time.monotonic() + self._mark_seconds
        self._confirmed += done
        return len(done)

    async def sweep(self) -> Swept:
        """Publish what is still pending after the grace period (one read of the oldest), chunk by chunk: a chunk the
        broker refuses does not stop the next."""
        swept, _, _ = await self._sweep_page(None)
        return swept

    async def _sweep_page(self, page: _Page | None) -> tuple[Swept, _Page | None, bool]:
        """One read of pending events (from `page` on, else from the oldest), published chunk by chunk; return what
        it did, where the next read starts (None when this read was not full: nothing is left behind it), and whether
        any publish failed for a reason other than no queue taking it (the broker down, refusing, not confirming)."""
        docs = await self._stream.pending(
            limit=self._sweep_batch_size,
            older_than=self._clock() - self._grace,
            since=page.occurred_at if page else None,
            besides=page.ids if page else (),
        )
        published, stopped, failed_any = 0, False, False
        if docs:
            await self._repair_projections(docs)
            for start in range(0, len(docs), self._batch_size):
                chunk = docs[start : start + self._batch_size]
                done, failed = await self._publish_each(chunk)
                # Marked before the next read sees them again, one by id each: see the class's note on recovery.
                await self._stream.mark_each_published(done, at=self._clock())
                published += len(done)
                failed_any = failed_any or failed
                if failed and not done:
                    stopped = True  # the broker takes nothing (down, blocked, refusing): the rest waits for a tick
                    break
        swept = Swept(read=len(docs), published=published)
        if len(docs) < self._sweep_batch_size or stopped:
            # Done, or no use reading on: only events no queue takes are worth paging past.
            return swept, None, failed_any
        last = docs[-1]["occurred_at"]
        at_last = {d["_id"] for d in docs if d["occurred_at"] == last}
        if page is not None and page.occurred_at == last:
            at_last |= page.ids  # the whole read was one instant: the next goes on past all of it read so far
        return swept, _Page(last, frozenset(at_last)), failed_any

    async def flush_marks(self) -> None:
        """Record the confirms gathered since the last flush; if this fails, the sweep republishes them."""
        done, self._confirmed, self._marks_due = self._confirmed, [], math.inf
        for start in range(0, len(done), self._batch_size):
            await self._stream.mark_published(done[start : start + self._batch_size], at=self._clock())

    async def _publish_each(self, docs: list[Document]) -> tuple[list[str], bool]:
        """Publish with confirms; return the ids of the events the broker confirmed, and whether any publish failed
        for a reason other than no queue taking it (the broker unreachable, refusing, or not confirming in time)."""
        if not docs:
            return [], False
        try:
            outcomes = await self._publisher.publish_each(EXCHANGE, [(d["type"], amqp_message(d)) for d in docs])
        except Exception as exc:  # noqa: BLE001 - no channel (broker unreachable): none confirmed, the sweep retries
            log.warning("relay.publish_failed", error=repr(exc))
            outcomes = [Outcome.FAILED] * len(docs)
        done = [d["_id"] for d, o in zip(docs, outcomes, strict=True) if o is Outcome.CONFIRMED]
        for doc, outcome in zip(docs, outcomes, strict=True):
            if outcome is Outcome.CONFIRMED:
                PUBLISHED.labels(doc["type"]).inc()
        if len(done) < len(docs):
            NOT_CONFIRMED.inc(len(docs) - len(done))
            log.warning("relay.unconfirmed", pending=len(docs) - len(done))
        return done, Outcome.FAILED in outcomes

    async def _repair_projections(self, docs: list[Document]) -> None:
        # A writer that crashed between its event insert and its projection write left the projection behind.
        # One lookup per request: a lookup by id is an index lookup, where FerretDB v1 would scan the whole
        # collection for one `$in` of many ids.
        latest: dict[str, Document] = {}
        for doc in docs:
            state = doc["state"]
            if state["_id"] not in latest or latest[state["_id"]]["version"] < state["version"]:
                latest[state["_id"]] = state
        await asyncio.gather(*(self._repair(state) for state in latest.values()))

    async def _repair(self, state: Document) -> None:
        async with self._repairs:
            if await self._projection.version(state["_id"]) < state["version"]:
                await self._projection.save(from_document(state))

    async def _measure_backlog(self) -> None:
        try:
            count, oldest = await self._stream.backlog()
        except Exception:  # noqa: BLE001 - metrics must not stop the relay
            return
        BACKLOG.set(count)
        BACKLOG_AGE.set((self._clock() - oldest).total_seconds() if oldest else 0)
