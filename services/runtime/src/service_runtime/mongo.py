"""MongoDB connection (PyMongo's native async API) and the write errors services test for."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

DUPLICATE_KEY = 11000


def connect_mongo(url: str, *, app_name: str) -> AsyncMongoClient[dict[str, Any]]:
    """Build a client (lazy: connects on first use); datetimes come back timezone-aware UTC."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
    )


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> bool:
    """True when the server answers a ping."""
    try:
        await client.admin.command("ping")
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
    return True


def only_duplicates(error: BulkWriteError) -> bool:
    """True when every error of an unordered bulk insert is a duplicate key (already done)."""
    return all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))


__all__ = ["DuplicateKeyError", "BulkWriteError", "connect_mongo", "ping", "only_duplicates"]
