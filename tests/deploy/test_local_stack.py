"""The local stack's MongoDB-compatible server serves lookups by key from an index, as MongoDB does."""

from __future__ import annotations

import json
from typing import Any

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
