"""The limits of the parts, measured with the settings the services use (step 1 of the benchmark)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import uuid4

import aio_pika
from pymongo import AsyncMongoClient

from notifier.emails import SmtpMailer
from service_runtime.amqp import ConfirmedPublisher, connect_amqp


async def rabbitmq(amqp_url: str, *, messages: int = 6000, batch: int = 500, prefetch: int = 200) -> dict[str, Any]:
    """Persistent 1 KB messages through a quorum queue: publish with confirms (batches in flight), consume + ack."""
    connection = await connect_amqp(amqp_url, name="bench-limits")
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(
            f"limits.{uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
        )
        publisher = ConfirmedPublisher(connection)
        body = b"x" * 1024
        received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == messages:
                done.set()

        await queue.consume(on_message)
        started = time.perf_counter()
        confirmed = 0
        for start in range(0, messages, batch):
            msgs = [
                (queue.name, aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(n)))
                for n in range(start, min(start + batch, messages))
            ]
            confirmed += sum(await publisher.publish_many("", msgs))
        published = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), timeout=120)
        elapsed = time.perf_counter() - started
        await publisher.close()
        await queue.delete(if_unused=False, if_empty=False)
        return {
            "messages": messages,
            "confirmed": confirmed,
            "publish_confirm_per_s": round(messages / published),
            "through_queue_per_s": round(messages / elapsed),
        }
    finally:
        await connection.close()


async def mongodb(
    mongo: AsyncMongoClient[dict[str, Any]], database: str, *, docs: int = 3000, concurrency: int = 16
) -> dict[str, Any]:
    """Single-document inserts and conditional updates (one document each), `concurrency` at a time."""
    collection = mongo[database]["limits"]
    ids = [uuid4().hex for _ in range(docs)]
    gate = asyncio.Semaphore(concurrency)

    async def timed(op: Any) -> float:
        async def one(i: str) -> None:
            async with gate:
                await op(i)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in ids))
        return time.perf_counter() - started

    now = datetime.now(UTC)
    insert_s = await timed(
        lambda i: collection.insert_one({"_id": i, "status": "sending", "at": now, "pad": "x" * 600})
    )
    update_s = await timed(
        lambda i: collection.update_one({"_id": i, "status": "sending"}, {"$set": {"status": "sent", "sent_at": now}})
    )
    await mongo.drop_database(database)
    return {
        "docs": docs,
        "concurrency": concurrency,
        "insert_one_per_s": round(docs / insert_s),
        "conditional_update_per_s": round(docs / update_s),
    }


async def smtp(host: str, port: int, *, connections: int, messages: int = 1500) -> dict[str, Any]:
    """Message submission through notifier's own mailer (reused connections, `connections` of them)."""
    mailer = SmtpMailer(host=host, port=port, connections=connections)
    to = f"limits-{uuid4().hex[:8]}@bench.example"

    def message(n: int) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"limit {n}"
        msg["From"] = "bench@booking.example"
        msg["To"] = to
        msg["Cc"] = "admin-limits@bench.example"
        msg.set_content("Hello,\n\n" + "A line of a cancellation email of about the real size.\n" * 14)
        return msg

    started = time.perf_counter()
    await asyncio.gather(*(mailer.send(message(n)) for n in range(messages)))
    elapsed = time.perf_counter() - started
    await mailer.close()
    return {"messages": messages, "connections": connections, "per_s": round(messages / elapsed)}
