"""Reading and replaying a consumer's dead-letter queue: `SERVICE dlq list` and `SERVICE dlq replay`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import typer
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from service_runtime.amqp import ConfirmedPublisher, ConsumerTopology, connect_amqp, declare_consumer_topology
from service_runtime.consumer import ATTEMPT_HEADER, REASON_HEADER, copy_message
from service_runtime.settings import ServiceSettings


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    """What an operator needs to decide about a parked message."""
    headers = message.headers or {}
    return {
        "message_id": message.message_id,
        "type": message.type,
        "correlation_id": message.correlation_id,
        "reason": str(headers.get(REASON_HEADER, "delivery limit reached")),
        "attempts": headers.get(ATTEMPT_HEADER, 0),
        "original_queue": str(headers.get("x-original-queue", "")),
        "body": message.body[:300].decode(errors="replace"),
    }


async def list_dead_letters(
    connection: AbstractRobustConnection, topology: ConsumerTopology, *, limit: int
) -> list[dict[str, Any]]:
    """Peek at up to `limit` parked messages; all of them stay in the queue."""
    channel = await connection.channel()
    try:
        await declare_consumer_topology(channel, topology)
        queue = await channel.get_queue(topology.dlq)
        held: list[AbstractIncomingMessage] = []
        while len(held) < limit and (message := await queue.get(no_ack=False, fail=False)) is not None:
            held.append(message)
        found = [describe(m) for m in held]
        for message in held:
            await message.nack(requeue=True)
        return found
    finally:
        await channel.close()


async def replay_dead_letters(
    connection: AbstractRobustConnection, topology: ConsumerTopology, *, limit: int, message_id: str | None = None
) -> int:
    """Move parked messages back to the work queue with fresh attempts (only `message_id` if given)."""
    channel = await connection.channel()
    publisher = ConfirmedPublisher(connection)
    replayed = 0
    skipped: list[AbstractIncomingMessage] = []
    try:
        await declare_consumer_topology(channel, topology)
        queue = await channel.get_queue(topology.dlq)
        while replayed < limit and (message := await queue.get(no_ack=False, fail=False)) is not None:
            if message_id is not None and message.message_id != message_id:
                skipped.append(message)
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k not in (ATTEMPT_HEADER, REASON_HEADER)}
            copy = copy_message(message, headers=headers)
            if await publisher.publish("", topology.queue, copy):
                await message.ack()
                replayed += 1
            else:
                await message.nack(requeue=True)
                break
        for message in skipped:
            await message.nack(requeue=True)
        return replayed
    finally:
        await publisher.close()
        await channel.close()


def dlq_cli(
    settings_factory: Callable[[], ServiceSettings], topology_factory: Callable[[Any], ConsumerTopology]
) -> typer.Typer:
    """The `dlq` command group of a consuming service."""
    cli = typer.Typer(no_args_is_help=True, help="Read and replay the dead-letter queue.")

    async def with_connection(run: Callable[[AbstractRobustConnection, ConsumerTopology], Any]) -> Any:
        settings = settings_factory()
        connection = await connect_amqp(settings.amqp_url, name="dlq-cli")
        try:
            return await run(connection, topology_factory(settings))
        finally:
            await connection.close()

    @cli.command("list")
    def list_command(limit: int = typer.Option(100, min=1, max=10_000, help="At most this many.")) -> None:
        """Print parked messages as JSON lines (they stay parked)."""
        for entry in asyncio.run(with_connection(lambda c, t: list_dead_letters(c, t, limit=limit))):
            typer.echo(json.dumps(entry))

    @cli.command("replay")
    def replay_command(
        limit: int = typer.Option(1000, min=1, help="At most this many."),
        message_id: str | None = typer.Option(None, "--id", help="Only the message with this id."),
    ) -> None:
        """Send parked messages back to the work queue, with fresh attempts."""
        count = asyncio.run(with_connection(lambda c, t: replay_dead_letters(c, t, limit=limit, message_id=message_id)))
        typer.echo(json.dumps({"replayed": count}))

    return cli
