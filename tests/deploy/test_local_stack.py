"""The local stack: its MongoDB-compatible server serves lookups by key from an index, as MongoDB does, and its
broker has the settings deploy/rabbitmq/petsit.conf gives."""

from __future__ import annotations

import json
from typing import Any

import aio_pika
import aiormq
import pytest
from pymongo import AsyncMongoClient, IndexModel

from service_runtime.mongo import ensure_indexes
from tests.support.ids import unique

pytestmark = pytest.mark.integration


def _plan_uses_an_index(explained: dict[str, Any]) -> bool:
    text = json.dumps(explained.get("queryPlanner", {}))
    return "Index Scan" in text or "IXSCAN" in text or "IDHACK" in text or "EXPRESS" in text


async def test_lookups_by_id_and_by_a_declared_index_use_an_index(mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    # On FerretDB v1 this holds only thanks to deploy/local/ferretdb-index-twins.sql (see there why).
    db = mongo[unique("stack_index").replace("-", "_")]
    try:
        docs = db["docs"]
        await ensure_indexes(docs, [IndexModel([("stream_id", 1), ("version", 1)], unique=True)])
        await docs.insert_many([{"_id": f"e{i}", "stream_id": f"s{i // 2}", "version": i % 2} for i in range(2000)])
        for query in ({"_id": "e1234"}, {"stream_id": "s77"}):
            explained = await db.command("explain", {"find": "docs", "filter": query}, verbosity="queryPlanner")
            assert _plan_uses_an_index(explained), (query, explained.get("queryPlanner"))
            assert await docs.count_documents(query) >= 1
    finally:
        await mongo.drop_database(db.name)


async def test_the_broker_refuses_a_message_over_the_configured_maximum_and_takes_one_under_it(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    # deploy/rabbitmq/petsit.conf: max_message_size = 1 MiB (compose and the local stack both load it).
    channel = await amqp.channel(publisher_confirms=True)
    queue = await channel.declare_queue(unique("size_limit"), exclusive=True)
    try:
        await channel.default_exchange.publish(aio_pika.Message(b"x" * 1_000_000), routing_key=queue.name)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="max size"):
            await channel.default_exchange.publish(aio_pika.Message(b"x" * 1_100_000), routing_key=queue.name)
    finally:
        await channel.close()
