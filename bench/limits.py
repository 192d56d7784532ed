"""The limits of the parts, measured with the settings the services use (step 1 of the benchmark)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import aio_pika
import aiohttp
from pymongo import AsyncMongoClient

from bench.cpu import cpu_spent
from bench.environment import start_uvicorn_app
from notifier.emails import SmtpMailer
from service_runtime.amqp import ConfirmedPublisher, connect_amqp


async def rabbitmq(
    amqp_url: str, *, queues: int = 1, messages: int = 6000, batch: int = 500, prefetch: int = 200
) -> dict[str, Any]:
    """Persistent 1 KB messages published with confirms (batches in flight) to an exchange routing each to `queues`
    quorum queues, each consumed with acks: one queue is the part's limit; two are what one event costs (booking
    publishes once, notifier's and audit's queues each take it)."""
    connection = await connect_amqp(amqp_url, name="bench-limits")
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        name = f"limits.{uuid4().hex[:8]}"
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, auto_delete=True)
        declared = []
        for n in range(queues):
            queue = await channel.declare_queue(f"{name}.{n}", durable=True, arguments={"x-queue-type": "quorum"})
            await queue.bind(exchange)
            declared.append(queue)
        publisher = ConfirmedPublisher(connection)
        body = b"x" * 1024
        received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == messages * queues:
                done.set()

        for queue in declared:
            await queue.consume(on_message)
        async with cpu_spent() as cpu:
            started = time.perf_counter()
            confirmed = 0
            for start in range(0, messages, batch):
                msgs = [
                    ("", aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(n)))
                    for n in range(start, min(start + batch, messages))
                ]
                confirmed += sum(await publisher.publish_many(name, msgs))
            published = time.perf_counter() - started
            await asyncio.wait_for(done.wait(), timeout=120)
            elapsed = time.perf_counter() - started
        await publisher.close()
        for queue in declared:
            await queue.delete(if_unused=False, if_empty=False)
        if confirmed != messages or received != messages * queues:
            raise RuntimeError(f"rabbitmq limit: {confirmed} of {messages} confirmed, {received} delivered")
        return {
            "messages": messages,
            "queues": queues,
            "confirmed": confirmed,
            "publish_confirm_per_s": round(messages / published),
            "through_queue_per_s": round(messages / elapsed),
            "cpu_ms_per_message": cpu.ms_per(messages, parts=("rabbitmq",)),
        }
    finally:
        await connection.close()


async def mongodb(
    mongo: AsyncMongoClient[dict[str, Any]],
    database: str,
    *,
    docs: int = 3000,
    concurrency: int = 16,
    batch: int = 20,
) -> dict[str, Any]:
    """Single-document inserts, finds and conditional updates by id (`concurrency` at a time), and inserts in
    batches of `batch` (as the services' group writes send them): rate and CPU per document of each."""
    collection = mongo[database]["limits"]
    ids = [uuid4().hex for _ in range(docs)]
    gate = asyncio.Semaphore(concurrency)
    now = datetime.now(UTC)

    def document(i: str) -> dict[str, Any]:
        return {"_id": i, "status": "sending", "at": now, "pad": "x" * 600}

    async def timed(op: Any, items: list[Any], per_item: int = 1) -> tuple[int, dict[str, float]]:
        async def one(item: Any) -> None:
            async with gate:
                await op(item)

        async with cpu_spent() as cpu:
            started = time.perf_counter()
            await asyncio.gather(*(one(item) for item in items))
            elapsed = time.perf_counter() - started
        operations = len(items) * per_item
        return round(operations / elapsed), cpu.ms_per(operations, parts=("ferretdb", "postgresql"))

    inserts, insert_cpu = await timed(lambda i: collection.insert_one(document(i)), ids)
    finds, find_cpu = await timed(lambda i: collection.find_one({"_id": i}), ids)
    updates, update_cpu = await timed(
        lambda i: collection.update_one({"_id": i, "status": "sending"}, {"$set": {"status": "sent", "sent_at": now}}),
        ids,
    )
    batched = mongo[database]["limits_batched"]
    chunks = [[uuid4().hex for _ in range(batch)] for _ in range(docs // batch)]
    batched_inserts, batched_cpu = await timed(
        lambda chunk: batched.insert_many([document(i) for i in chunk], ordered=False), chunks, per_item=batch
    )
    await mongo.drop_database(database)
    return {
        "docs": docs,
        "concurrency": concurrency,
        "insert_one_per_s": inserts,
        "find_by_id_per_s": finds,
        "conditional_update_per_s": updates,
        f"insert_in_batches_of_{batch}_per_s": batched_inserts,
        "batch": batch,
        "cpu_ms_per_document": {
            "insert_one": insert_cpu,
            "find_by_id": find_cpu,
            "conditional_update": update_cpu,
            "insert_batched": batched_cpu,
        },
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

    built = [message(n) for n in range(messages)]  # composing is the service's work, not the part's: not counted
    async with cpu_spent() as cpu:
        started = time.perf_counter()
        await asyncio.gather(*(mailer.send(m) for m in built))
        elapsed = time.perf_counter() - started
    await mailer.close()
    return {
        "messages": messages,
        "connections": connections,
        "per_s": round(messages / elapsed),
        "cpu_ms_per_message": cpu.ms_per(messages, parts=("mailpit",)),
    }


async def http(log_dir: Path, *, requests: int = 3000, concurrency: int = 16) -> dict[str, Any]:
    """The HTTP hop alone: the load generator's client (aiohttp) against the services' HTTP stack answering a cancel
    with no work at all (bench/http_floor.py, its own process), `concurrency` requests at a time."""
    proc, url = start_uvicorn_app("bench.http_floor:create_app", log_dir / "http_floor.log")
    try:
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=1000)) as session:

            async def one(n: int) -> int:
                async with (
                    gate,
                    session.post(
                        f"/v1/portal/job-requests/jr-{n}/cancel",
                        json={"reason": "Plans changed"},
                        headers={"Authorization": "Bearer " + "x" * 200},
                    ) as response,
                ):
                    await response.read()
                    return response.status

            await asyncio.gather(*(one(n) for n in range(200)))  # warm: connections open, routes compiled
            async with cpu_spent({proc.pid: "http server"}) as cpu:
                started = time.perf_counter()
                statuses = await asyncio.gather(*(one(n) for n in range(requests)))
                elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if any(status != 200 for status in statuses):  # an error path is cheaper: it must not pass for the floor
        raise RuntimeError(f"http floor: statuses {sorted(set(statuses))}, expected only 200")
    return {
        "requests": requests,
        "concurrency": concurrency,
        "per_s": round(requests / elapsed),
        "cpu_ms_per_request": cpu.ms_per(requests, parts=("http server",)),
    }
