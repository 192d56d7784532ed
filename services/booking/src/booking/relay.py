"""The outbox relay: publishes stored events with confirms, many in flight; a periodic sweep catches the rest."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import aio_pika
import structlog
from prometheus_client import Counter, Gauge

from booking.codec import from_document
from booking.domain import JobRequest
from booking.events import Document, EventStream
from booking.store import JobRequests
from booking_contracts import CONTENT_TYPE, EXCHANGE, SOURCE
from service_runtime.amqp import ConfirmedPublisher

log = structlog.get_logger(__name__)

PUBLISHED = Counter("outbox_published_events", "Events confirmed by the broker.", ["event_type"])
NOT_CONFIRMED = Counter("outbox_unconfirmed_publishes", "Publishes not confirmed (broker down, nacked or unroutable).")
BACKLOG = Gauge("outbox_backlog_events", "Stored events not yet confirmed by the broker (at the last sweep).")
BACKLOG_AGE = Gauge(
    "outbox_backlog_oldest_age_seconds", "Age of the oldest event not yet confirmed (at the last sweep)."
)


def amqp_message(doc: Document) -> aio_pika.Message:
    """The AMQP message of a stored event: CloudEvents structured mode, persistent, ids in the properties."""
    return aio_pika.Message(
        doc["payload"].encode(),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=doc["_id"],
        correlation_id=doc.get("correlation_id") or None,
        type=doc["type"],
        app_id=SOURCE.strip("/"),
        timestamp=doc["occurred_at"],
    )


class OutboxRelay:
    """Publishes pending events: woken at once after a write, and every `sweep_seconds` in any case."""

    def __init__(
        self,
        *,
        stream: EventStream,
        projection: JobRequests,
        publisher: ConfirmedPublisher,
        batch_size: int = 500,
        sweep_seconds: float = 2.0,
        linger_seconds: float = 0.01,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._stream = stream
        self._projection = projection
        self._publisher = publisher
        self._batch_size = batch_size
        self._sweep_seconds = sweep_seconds
        self._linger_seconds = linger_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        # Requests whose projection this process wrote at that version: the publish pass need not check them.
        self._written: OrderedDict[str, int] = OrderedDict()
        self._repairs = asyncio.Semaphore(8)

    def wake(self, written: JobRequest | None = None) -> None:
        """Ask for a publish pass now: called after each stored change, with the request whose projection is written."""
        if written is not None:
            self._written[written.id] = max(written.version, self._written.get(written.id, 0))
            self._written.move_to_end(written.id)
            while len(self._written) > 100_000:
                self._written.popitem(last=False)
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled; a failing pass is logged and retried at the next sweep."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._sweep_seconds)
            except TimeoutError:
                await self._measure_backlog()
            else:
                # Let the changes of the next few milliseconds join this pass: each pass costs a query and a mark
                # whatever its size, so under load fewer, larger passes publish more for the same work.
                await asyncio.sleep(self._linger_seconds)
            self._wake.clear()
            try:
                while await self.publish_pending() == self._batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or database down: the sweep tries again
                log.warning("relay.pass_failed", error=repr(exc))
                await asyncio.sleep(min(self._sweep_seconds, 1.0))

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; return how many were pending in it."""
        docs = await self._stream.pending(limit=self._batch_size)
        if not docs:
            return 0
        await self._repair_projections(docs)
        confirmed = await self._publisher.publish_many(EXCHANGE, [(d["type"], amqp_message(d)) for d in docs])
        done = [d["_id"] for d, ok in zip(docs, confirmed, strict=True) if ok]
        await self._stream.mark_published(done, at=self._clock())
        for doc, ok in zip(docs, confirmed, strict=True):
            if ok:
                PUBLISHED.labels(doc["type"]).inc()
        if len(done) < len(docs):
            NOT_CONFIRMED.inc(len(docs) - len(done))
            log.warning("relay.unconfirmed", pending=len(docs) - len(done))
            return 0  # leave the rest for the next sweep instead of spinning
        return len(docs)

    async def _repair_projections(self, docs: list[Document]) -> None:
        # A writer that crashed between its event insert and its projection write left the projection behind.
        # What this process wrote itself is known; the rest (other replicas, a crash, a write still under way) is
        # read back one id at a time: a lookup by id is an index lookup, where FerretDB v1 would scan the whole
        # collection for one `$in` of many ids.
        latest: dict[str, Document] = {}
        for doc in docs:
            state = doc["state"]
            if state["_id"] not in latest or latest[state["_id"]]["version"] < state["version"]:
                latest[state["_id"]] = state
        unknown = [s for request_id, s in latest.items() if self._written.get(request_id, 0) < s["version"]]
        await asyncio.gather(*(self._repair(state) for state in unknown))
        for request_id, state in latest.items():
            if self._written.get(request_id, 0) <= state["version"]:
                self._written.pop(request_id, None)

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
