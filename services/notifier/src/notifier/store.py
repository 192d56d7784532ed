"""Notifier's database: HOME notices and the record of sent emails, each keyed unique by its event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from service_runtime.mongo import GroupWriter, UpdateOne, ensure_indexes

Document = dict[str, Any]


class Notices:
    """Notices on the admin's HOME screen; one per (consumer, event): `dedupe_key` is unique."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._notices = db["notices"]
        self._inserts = GroupWriter(self._notices)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self._notices,
            [
                IndexModel([("business_id", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("dedupe_key", ASCENDING)], unique=True),
            ],
        )

    async def add(self, notice: Document) -> bool:
        """Insert a notice; False when the event already made one (a duplicate delivery)."""
        return await self._inserts.insert(notice)

    async def get(self, business_id: str, notice_id: str) -> Document | None:
        return await self._notices.find_one({"_id": notice_id, "business_id": business_id})

    async def created_since(self, business_id: str, since: datetime, *, limit: int) -> list[Document]:
        """Notices created at or after `since`, oldest first (the live HOME feed reads these)."""
        query = {"business_id": business_id, "created_at": {"$gte": since}}
        return (
            await self._notices.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit).to_list()
        )

    async def list(self, business_id: str, *, unread_only: bool, limit: int) -> list[Document]:
        """Newest first."""
        query: Document = {"business_id": business_id}
        if unread_only:
            query["read_at"] = None
        return await self._notices.find(query).sort("created_at", DESCENDING).limit(limit).to_list()

    async def unread_count(self, business_id: str) -> int:
        return await self._notices.count_documents({"business_id": business_id, "read_at": None})

    async def mark_read(self, business_id: str, notice_id: str, *, at: datetime) -> Document | None:
        """Set read_at once (a repeat keeps the first time); None when the business has no such notice."""
        updated = await self._notices.find_one_and_update(
            {"_id": notice_id, "business_id": business_id, "read_at": None},
            {"$set": {"read_at": at}},
            return_document=ReturnDocument.AFTER,
        )
        return updated or await self._notices.find_one({"_id": notice_id, "business_id": business_id})


class SentEmails:
    """Claims and records of emails, keyed (consumer, event, recipient): a unique insert decides who sends."""

    def __init__(self, db: AsyncDatabase[Document], *, lease: timedelta = timedelta(seconds=30)) -> None:
        self._sent = db["sent_emails"]
        self._claims = GroupWriter(self._sent)
        self._marks = GroupWriter(self._sent, max_batch=20)
        self._lease = lease

    async def create_indexes(self) -> None:
        """The key is the document id: unique without another index."""

    @staticmethod
    def key(consumer: str, event_id: str, recipient: str) -> str:
        return f"{consumer}:{event_id}:{recipient.lower()}"

    async def claim(self, key: str, *, now: datetime) -> Literal["claimed", "sent", "busy"]:
        """Claim the right to send: `sent` if done before, `busy` while another delivery holds a fresh claim."""
        if await self._claims.insert({"_id": key, "status": "sending", "claimed_at": now}):
            return "claimed"
        # A claim older than the lease belongs to a consumer that died mid-send: take it over.
        taken = await self._sent.find_one_and_update(
            {"_id": key, "status": "sending", "claimed_at": {"$lt": now - self._lease}},
            {"$set": {"claimed_at": now}},
        )
        if taken is not None:
            return "claimed"
        current = await self._sent.find_one({"_id": key}, {"status": 1})
        return "sent" if current is not None and current["status"] == "sent" else "busy"

    async def mark_sent(self, key: str, *, message_id: str, at: datetime) -> None:
        """Record the server's 250 for a claimed email."""
        await self._marks.write(
            UpdateOne({"_id": key}, {"$set": {"status": "sent", "message_id": message_id, "sent_at": at}})
        )

    async def release(self, key: str) -> None:
        """Give a claim back after a failed send, so that the retry may claim it at once."""
        await self._sent.delete_one({"_id": key, "status": "sending"})
