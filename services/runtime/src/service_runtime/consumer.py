"""The one consumer middleware chain: bind ids → decode and validate → handler → ack, retry or dead-letter."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from booking_contracts import EVENTS, CloudEvent, JobRequestEvent, UnknownEventType, data_model_for
from booking_contracts.envelope import published_versions, version_of
from service_runtime.amqp import ConfirmedPublisher, ConsumerTopology, declare_consumer_topology
from service_runtime.errors import PermanentError, Unavailable
from service_runtime.mongo import DATABASE_UNAVAILABLE, may_be_outage

log = structlog.get_logger(__name__)

Handler = Callable[[CloudEvent[Any]], Awaitable[None]]
"""A subscribed handler: gets the validated event, raises to retry (any error) or park (PermanentError)."""

ATTEMPT_HEADER = "x-attempt"
DEFERRED_SINCE_HEADER = "x-deferred-since"  # epoch milliseconds of a message's first deferral
REASON_HEADER = "x-dead-letter-reason"
_NOT_THE_MESSAGES_FAULT: tuple[type[Exception], ...] = (Unavailable, *DATABASE_UNAVAILABLE)

CONSUMED = Counter(
    "messaging_client_consumed_messages",
    "Messages consumed, by outcome.",
    ["messaging_destination_name", "outcome", "error_type"],
)
RETRIED = Counter("messaging_retried_messages", "Messages sent to a delayed retry.", ["messaging_destination_name"])
DEFERRED = Counter(
    "messaging_deferred_messages",
    "Messages put back for later because a dependency is down.",
    ["messaging_destination_name"],
)
DEAD_LETTERED = Counter(
    "messaging_dead_lettered_messages",
    "Messages parked in the dead-letter queue.",
    ["messaging_destination_name", "reason"],
)
PROCESS_SECONDS = Histogram(
    "messaging_process_duration_seconds",
    "Time from delivery to settlement.",
    ["messaging_destination_name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class Rejected(Exception):
    """The message can never be handled: park it with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Skipped(Exception):
    """The message needs nothing from this consumer: acknowledge it (`reason` is counted)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


MAX_EVENT_BYTES = 256 * 1024
"""An event is ~1-2 KB; a body far over that is a publisher's bug (or worse), parked before it is parsed: parsing
tens of MB blocks the loop for a second and builds objects many times the body's size. The body itself is in
memory already: the broker's `max_message_size` is what bounds that."""


def decode_event(body: bytes) -> CloudEvent[Any]:
    """Parse and validate a structured-mode CloudEvent with the data model of its type and version."""
    if len(body) > MAX_EVENT_BYTES:
        raise Rejected("too_large", f"{len(body)} bytes, over the {MAX_EVENT_BYTES} an event may have")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", str(exc)) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or not isinstance(raw.get("dataschema"), str):
        raise Rejected("invalid_envelope", "not a CloudEvent with type and dataschema")
    try:
        model: type[JobRequestEvent] = data_model_for(raw["type"], version_of(raw["dataschema"]))
    except UnknownEventType as exc:
        # A breaking change is published side by side, its twins sharing the id: a version this reader does not know
        # is skipped when the event names a twin in one it does (the twin brings the change); else it is parked.
        own, listed = version_of(raw["dataschema"]), published_versions(raw)
        twins = sorted(v for v in listed - {own} if (raw["type"], v) in EVENTS) if own in listed else []
        if twins:
            raise Skipped("other_version", f"{exc}; read as its v{twins[-1]} twin") from None
        raise Rejected("unknown_event", str(exc)) from None
    try:
        return CloudEvent[model].model_validate(raw)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise Rejected("invalid_schema", _short(exc)) from None


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])


class EventConsumer:
    """Consumes one work queue and runs every delivery through the chain; the only place that acks or rejects."""

    def __init__(
        self,
        *,
        queue: AbstractQueue,
        topology: ConsumerTopology,
        subscriptions: Mapping[str, Handler],
        publisher: ConfirmedPublisher,
        database_ok: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._queue = queue
        self._topology = topology
        self._subscriptions = subscriptions
        self._publisher = publisher
        self._database_ok = database_ok
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Start consuming (robust channels re-subscribe by themselves after a reconnect or a broker cancel)."""
        self._tag = await self._queue.consume(self._on_message)

    async def is_consuming(self) -> bool:
        """True while the broker has our consumer on the work queue (false during a reconnect or after a cancel)."""
        if self._tag is None or self._queue.channel.is_closed:
            return False
        try:
            channel = await asyncio.wait_for(self._queue.channel.get_underlay_channel(), timeout=1.0)
        except Exception:  # noqa: BLE001 - no live channel means not consuming
            return False
        return self._tag in channel.consumers  # type: ignore[attr-defined]

    async def cancel(self) -> None:
        """Stop taking new messages (the broker requeues what it has not delivered yet)."""
        if self._tag is None:
            return
        tag, self._tag = self._tag, None
        try:
            # Bounded: while the broker is unreachable a robust channel would wait for it forever.
            await asyncio.wait_for(self._queue.cancel(tag), timeout=5.0)
            log.info("consumer.cancelled", queue=self._topology.queue, in_flight=len(self._in_flight))
        except Exception as exc:  # noqa: BLE001 - a dead channel delivers nothing more anyway
            log.warning("consumer.cancel_failed", error=repr(exc))

    async def stop(self, *, grace: float = 25.0) -> None:
        """Stop taking new messages, then wait (bounded) for the ones in hand to settle."""
        await self.cancel()
        try:
            async with asyncio.timeout(grace):  # not wait_for: on 3.11 it can swallow a cancellation
                await self._idle.wait()
        except TimeoutError:
            log.warning("consumer.stop.in_flight_left", count=len(self._in_flight))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            self._idle.clear()
        try:
            await self.process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)
                if not self._in_flight:
                    self._idle.set()

    async def process(self, message: AbstractIncomingMessage) -> None:
        """Run one delivery through the chain and settle it exactly once."""
        with structlog.contextvars.bound_contextvars(
            correlation_id=message.correlation_id or "",
            event_id=message.message_id or "",
            event_type=message.type or "",
        ):
            try:
                await self._run(message)
            except Exception as exc:  # noqa: BLE001 - settling failed (a publish or ack that raised): never leave a
                # delivery unsettled, holding a prefetch slot for good; the broker redelivers it (its delivery limit
                # parks it if this repeats).
                log.error("consumer.settle_failed", error=repr(exc))
                with contextlib.suppress(Exception):
                    await message.reject(requeue=True)
                CONSUMED.labels(self._topology.queue, "requeued", type(exc).__name__).inc()

    async def _run(self, message: AbstractIncomingMessage) -> None:
        """The chain: decode, the handler, and the settlement its outcome calls for."""
        started = time.perf_counter()
        name = self._topology.queue
        try:
            event = decode_event(message.body)
            handler = self._subscriptions.get(event.type)
            if handler is None:
                raise Rejected("unsubscribed_event", f"no handler for {event.type}")
            with structlog.contextvars.bound_contextvars(correlation_id=event.correlation_id):
                await handler(event)
        except Skipped as exc:
            log.info("consumer.skipped", reason=exc.reason, detail=exc.detail)
            await message.ack()
            CONSUMED.labels(name, "skipped", exc.reason).inc()
        except Rejected as exc:
            await self._dead_letter(message, exc.reason, exc.detail)
            CONSUMED.labels(name, "dead_lettered", exc.reason).inc()
        except PermanentError as exc:
            await self._dead_letter(message, "permanent_error", str(exc))
            CONSUMED.labels(name, "dead_lettered", type(exc).__name__).inc()
        except Exception as exc:  # noqa: BLE001 - anything else is worth a bounded, delayed retry
            if isinstance(exc, _NOT_THE_MESSAGES_FAULT) or await self._database_down(exc):
                # Our own database is down: wait and try again without using up the message's attempts.
                await self._defer(message, exc)
                CONSUMED.labels(name, "deferred", type(exc).__name__).inc()
            else:
                await self._retry(message, exc)
                CONSUMED.labels(name, "retried", type(exc).__name__).inc()
        else:
            await message.ack()
            CONSUMED.labels(name, "ok", "").inc()
        finally:
            PROCESS_SECONDS.labels(name).observe(time.perf_counter() - started)

    async def _database_down(self, exc: Exception) -> bool:
        """Whether a database error other than the known outage errors is the database's state after all: FerretDB
        answers every command with an OperationFailure (code 1) while its PostgreSQL is down, where MongoDB would
        be unreachable (a ConnectionFailure). A ping that fails too says so; then the message waits, attempts kept."""
        return may_be_outage(exc) and self._database_ok is not None and not await self._database_ok()

    async def _retry(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        attempt = _int_header(message, ATTEMPT_HEADER) + 1
        if attempt >= self._topology.max_attempts:
            log.error("consumer.retries_exhausted", attempt=attempt, error=repr(exc))
            await self._dead_letter(message, "retries_exhausted", repr(exc)[:500])
            return
        log.warning("consumer.retry", attempt=attempt, error=repr(exc))
        copy = _copy(message, {ATTEMPT_HEADER: attempt})
        if await self._publisher.publish("", self._topology.retry_queue(attempt), copy):
            RETRIED.labels(self._topology.queue).inc()
            await message.ack()
        else:
            # The wait queue did not take it: hand the message back to the broker (counts toward the delivery limit).
            await message.reject(requeue=True)

    async def _defer(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        now_ms = int(time.time() * 1000)
        since = _int_header(message, DEFERRED_SINCE_HEADER) or now_ms
        if now_ms - since > self._topology.defer_limit_seconds * 1000:
            waited = (now_ms - since) // 1000
            await self._dead_letter(message, "deferred_too_long", f"waited {waited} s for: {exc!r}"[:500])
            return
        log.warning("consumer.deferred", error=repr(exc))
        copy = _copy(message, {DEFERRED_SINCE_HEADER: since})
        if await self._publisher.publish("", self._topology.retry_queue(1), copy):
            DEFERRED.labels(self._topology.queue).inc()
            await message.ack()
        else:
            await message.reject(requeue=True)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, detail: str) -> None:
        log.error("consumer.dead_letter", reason=reason, detail=detail)
        copy = _copy(message, {REASON_HEADER: f"{reason}: {detail}"[:1000], "x-original-queue": self._topology.queue})
        if await self._publisher.publish("", self._topology.dlq, copy):
            DEAD_LETTERED.labels(self._topology.queue, reason).inc()
            await message.ack()
        else:
            await message.reject(requeue=True)


def _int_header(message: AbstractIncomingMessage, name: str) -> int:
    """A count header: anything but a whole number from 0 up (set by whoever published the message) counts as 0."""
    value = (message.headers or {}).get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def copy_message(message: AbstractIncomingMessage, *, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent copy of a delivered message with the given headers (to retry, park or replay it)."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


def _copy(message: AbstractIncomingMessage, extra_headers: dict[str, Any]) -> aio_pika.Message:
    return copy_message(message, headers={**(message.headers or {}), **extra_headers})


async def open_consumer(
    connection: Any,
    *,
    topology: ConsumerTopology,
    subscriptions: Mapping[str, Handler],
    prefetch: int,
    database_ok: Callable[[], Awaitable[bool]] | None = None,
) -> EventConsumer:
    """Declare the consumer's queues on a robust channel with `prefetch`, and start consuming. `database_ok` tells a
    database error that is an outage from one that is the message's (EventConsumer._database_down)."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await declare_consumer_topology(channel, topology)
    consumer = EventConsumer(
        queue=queue,
        topology=topology,
        subscriptions=subscriptions,
        publisher=ConfirmedPublisher(connection),
        database_ok=database_ok,
    )
    await consumer.start()
    return consumer
