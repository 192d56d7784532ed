"""Audit's database: client log entries, keyed by event id (a duplicate insert means already logged)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from service_runtime.mongo import GroupWriter, ensure_indexes

Document = dict[str, Any]


class ClientLogs:
    """The LOGS of each client; one entry per (consumer, event): `dedupe_key` is unique."""

    def __init__(self, db: AsyncDatabase[Document], *, linger: float = 0.0) -> None:
        self._entries = db["client_log_entries"]
        self._inserts = GroupWriter(self._entries, linger=linger)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self._entries,
            [
                IndexModel(
                    [
                        ("business_id", ASCENDING),
                        ("client_id", ASCENDING),
                        ("occurred_at", DESCENDING),
                        ("_id", DESCENDING),
                    ]
                ),
                IndexModel([("dedupe_key", ASCENDING)], unique=True),
            ],
            retired=["business_id_1_client_id_1_occurred_at_-1"],  # a prefix of the first (before LOGS paging)
        )

    async def add(self, entry: Document) -> bool:
        """Insert an entry; False when this event was logged before."""
        return await self._inserts.insert(entry)

    async def of_client(
        self,
        business_id: str,
        client_id: str,
        *,
        limit: int,
        before: tuple[datetime, str | None] | None = None,
    ) -> list[Document]:
        """Newest first; with `before` (an entry's `occurred_at` and id), only the entries older than that one."""
        query: Document = {"business_id": business_id, "client_id": client_id}
        if before is not None:
            at, entry_id = before
            query["$or"] = [{"occurred_at": {"$lt": at}}]
            if entry_id is not None:  # entries of the same instant are ordered by id
                query["$or"].append({"occurred_at": at, "_id": {"$lt": entry_id}})
        cursor = self._entries.find(query)
        return await cursor.sort([("occurred_at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list()
