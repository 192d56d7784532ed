"""Notifier's database: HOME notices and the record of sent emails, each keyed unique by its event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from service_runtime.mongo import GroupWriter, ensure_indexes, insert_new

Document = dict[str, Any]


class Notices:
    """Notices on the admin's HOME screen; one per (consumer, event): `dedupe_key` is unique."""

    def __init__(self, db: AsyncDatabase[Document], *, linger: float = 0.0) -> None:
        self._notices = db["notices"]
        self._inserts = GroupWriter(self._notices, linger=linger)

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

    async def created_since(
        self, business_id: str, since: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Document]:
        """Notices created at or after `since`, oldest first (the live HOME feed reads these); with `after`, only
        those past that (created_at, id) position: the next page."""
        query: Document = {"business_id": business_id, "created_at": {"$gte": since}}
        if after is not None:
            at, notice_id = after
            query["$or"] = [{"created_at": {"$gt": at}}, {"created_at": at, "_id": {"$gt": notice_id}}]
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
    """Who may send an email, and the record that it was sent: two inserts keyed (consumer, event, recipient).

    A claim (`email_claims`) is inserted before the email goes out: the unique key lets one delivery of an event send.
    The sent-email record (`sent_emails`) is inserted right after the server's 250 and never changed. Neither is
    updated in the normal course (design.md: effects are inserted, never "check then update"), and on FerretDB v1 an
    insert costs the server about half what an update of the claim did (bench/README.md). A claim changes only when a
    delivery takes over one older than the lease (its holder died mid-send), which one delivery decides by inserting
    the takeover, and is deleted when a send failed.
    """

    LAYOUT = 2  # 1: one document per email in `sent_emails`, its `status` updated from "sending" to "sent"

    def __init__(
        self, db: AsyncDatabase[Document], *, lease: timedelta = timedelta(seconds=30), linger: float = 0.0
    ) -> None:
        self._meta = db["notifier_meta"]
        self._claims = db["email_claims"]
        self._takeovers = db["email_claim_takeovers"]
        self._sent = db["sent_emails"]
        self._claim_writes = GroupWriter(self._claims, linger=linger)
        # The record goes at once: it is written while the SMTP connection is held, right after the 250, and until it
        # is stored a crash means a resend.
        self._sent_writes = GroupWriter(self._sent)
        self._lease = lease

    @property
    def lease(self) -> timedelta:
        """How long a claim holds before another delivery may take it over (its holder is taken for dead; one still
        recording a sent email through a database outage may outlive it, see notifier.handlers)."""
        return self._lease

    async def create_indexes(self) -> None:
        """The key is the document id in both collections: unique without another index."""

    async def adopt_earlier_layout(self) -> int:
        """Bring the emails of layout 1 into this one, once per database; return how many documents it adopted.

        Each becomes a claim (so that a redelivery finds it), and only the sent ones stay sent-email records (an
        unfinished "sending" one is a claim whose lease runs out as before). Idempotent, so two notifiers starting
        together may both run it; a marker document makes later starts a single read.
        """
        if await self._meta.find_one({"_id": "sent_emails_layout", "version": self.LAYOUT}) is not None:
            return 0
        earlier = await self._sent.find({"status": {"$exists": True}}).to_list()
        for doc in earlier:
            await self._claim_writes.insert({"_id": doc["_id"], "claimed_at": doc.get("claimed_at")})
            if doc["status"] == "sent":
                await self._sent.update_one({"_id": doc["_id"]}, {"$unset": {"status": "", "claimed_at": ""}})
            else:
                await self._sent.delete_one({"_id": doc["_id"], "status": doc["status"]})
        await insert_new(self._meta, {"_id": "sent_emails_layout", "version": self.LAYOUT})
        return len(earlier)

    @staticmethod
    def key(consumer: str, event_id: str, recipient: str) -> str:
        return f"{consumer}:{event_id}:{recipient.lower()}"

    async def claim(self, key: str, *, now: datetime) -> Literal["claimed", "sent", "busy"]:
        """Claim the right to send: `sent` if done before, `busy` while another delivery holds a fresh claim."""
        if await self._claim_writes.insert({"_id": key, "claimed_at": now}):
            return "claimed"
        if await self.was_sent(key):
            return "sent"
        # A claim older than the lease belongs to a consumer that died mid-send. Of the deliveries that find it, the
        # one that inserts the takeover of that claim (its key and time) has it: an update cannot decide that on
        # FerretDB v1, where two of them racing could both match (a test races eight).
        stale = await self._claims.find_one({"_id": key, "claimed_at": {"$lt": now - self._lease}})
        if stale is None or not await self._take_over(key, stale["claimed_at"], now=now):
            return "busy"
        moved = await self._claims.update_one(
            {"_id": key, "claimed_at": stale["claimed_at"]}, {"$set": {"claimed_at": now}}
        )
        if not moved.matched_count and not await self._claim_writes.insert({"_id": key, "claimed_at": now}):
            return "busy"  # its holder gave it back meanwhile, and another delivery claimed it afresh
        # Its holder may have recorded the send between our reads: then there is nothing left to do.
        return "sent" if await self.was_sent(key) else "claimed"

    async def _take_over(self, key: str, claimed_at: datetime, *, now: datetime, tries: int = 5) -> bool:
        """Insert the takeover of the claim `key` made at `claimed_at`; False when another delivery has it.

        A takeover whose taker died before moving the claim is itself stale after a lease: the next one is numbered.
        """
        for n in range(tries):
            takeover_id = f"{key}@{claimed_at.isoformat()}#{n}"
            if await insert_new(self._takeovers, {"_id": takeover_id, "claim": key, "taken_at": now}):
                return True
            earlier = await self._takeovers.find_one({"_id": takeover_id}, {"taken_at": 1})
            if earlier is None or earlier["taken_at"] >= now - self._lease:
                return False  # taken moments ago (or just given up): that delivery has it
        return False

    async def was_sent(self, key: str) -> bool:
        """True when the server accepted this email."""
        return await self._sent.find_one({"_id": key}, {"_id": 1}) is not None

    async def mark_sent(self, key: str, *, message_id: str, at: datetime) -> None:
        """Record the server's 250 for a claimed email (a repeat of the record is not an error)."""
        await self._sent_writes.insert({"_id": key, "message_id": message_id, "sent_at": at})

    async def release(self, key: str, *, claimed_at: datetime) -> None:
        """Give our claim (made at `claimed_at`) back after a failed send, so that the retry may claim it at once.

        Only our own: a delivery that took the claim over after our lease ran out may have sent the email, and
        deleting its claim would let the next delivery send it again.
        """
        await self._claims.delete_one({"_id": key, "claimed_at": claimed_at})
