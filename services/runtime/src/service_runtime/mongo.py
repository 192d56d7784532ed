"""MongoDB connection (PyMongo's native async API) and the write errors services test for."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

DUPLICATE_KEY = 11000


def connect_mongo(url: str, *, app_name: str, max_pool_size: int = 20) -> AsyncMongoClient[dict[str, Any]]:
    """Build a client (lazy: connects on first use); datetimes come back timezone-aware UTC.

    The pool bounds how many commands one process runs at once: FerretDB v1 can deadlock when the commands of
    all clients together outgrow its PostgreSQL pool (50 by default).
    """
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        maxPoolSize=max_pool_size,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
    )


async def ping(client: AsyncMongoClient[dict[str, Any]], *, timeout: float = 2.0) -> bool:
    """True when the server answers a ping within `timeout` seconds."""
    try:
        await asyncio.wait_for(client.admin.command("ping"), timeout)
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
    return True


async def ensure_indexes(collection: AsyncCollection[dict[str, Any]], indexes: list[IndexModel]) -> None:
    """Create indexes one command each: FerretDB v1 panics on a multi-index createIndexes whose indexes exist."""
    for index in indexes:
        await collection.create_indexes([index])


def only_duplicates(error: BulkWriteError) -> bool:
    """True when every error of an unordered bulk insert is a duplicate key (already done)."""
    return all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))


__all__ = ["BulkWriteError", "DuplicateKeyError", "connect_mongo", "ensure_indexes", "only_duplicates", "ping"]
