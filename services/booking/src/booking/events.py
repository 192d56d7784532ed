"""The job request event streams: one insert per change, unique on (stream, version); also the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from booking.codec import cloud_event, from_document, to_document
from booking.domain import JobRequest
from service_runtime.mongo import GroupWriter, UpdateOne, ensure_indexes, insert_new

Document = dict[str, Any]


class VersionConflict(Exception):
    """Another writer stored this version first: re-read and decide again."""


# `relay_pending` (True until the broker confirms) is what the relay queries: FerretDB v1 pushes an equality on a
# boolean down to PostgreSQL, but not `published_at: null`, which made every relay pass read the whole history.
PENDING = {"relay_pending": True}


class EventStream:
    """Stored events of all job requests. Request handlers only insert; only the relay sets `published_at`."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._events = db["job_request_events"]
        self._sweeps = db["relay_sweeps"]
        # Concurrent changes (of different requests) share one insert_many; each keeps its own unique-index verdict.
        self._inserts = GroupWriter(self._events)
        self._marks = GroupWriter(self._events, max_batch=20)

    async def create_indexes(self) -> None:
        """The unique (stream, version) index is what makes a change atomic."""
        await ensure_indexes(
            self._events,
            [
                IndexModel([("stream_id", ASCENDING), ("version", ASCENDING)], unique=True, name="stream_version"),
                IndexModel([("relay_pending", ASCENDING), ("occurred_at", ASCENDING)], name="relay_pending"),
            ],
        )

    async def latest(self, job_request_id: str) -> JobRequest | None:
        """The request as its latest stored event left it."""
        doc = await self._events.find_one({"stream_id": job_request_id}, {"state": 1}, sort=[("version", DESCENDING)])
        return from_document(doc["state"]) if doc else None

    async def append(self, request: JobRequest, *, correlation_id: str, event_id: UUID | None = None) -> Document:
        """Store the change that produced `request`; return the stored event, or raise VersionConflict if taken."""
        event_id = event_id or uuid4()
        event = cloud_event(request, event_id=event_id, correlation_id=correlation_id)
        document = {
            "_id": str(event_id),
            "stream_id": request.id,
            "version": request.version,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "correlation_id": correlation_id,
            "state": to_document(request),
            "payload": event.model_dump_json(),
            "published_at": None,
            "relay_pending": True,
        }
        if not await self._inserts.insert(document):
            raise VersionConflict(request.id)
        return document

    async def pending(
        self, *, limit: int, older_than: datetime, since: datetime | None = None, besides: Collection[str] = ()
    ) -> list[Document]:
        """Events stored before `older_than` (and at or after `since`, other than `besides`) not yet confirmed by the
        broker, oldest first."""
        query: Document = {**PENDING, "occurred_at": {"$lt": older_than}}
        if since is not None:
            query["occurred_at"]["$gte"] = since
        if besides:
            query["_id"] = {"$nin": list(besides)}
        cursor = self._events.find(
            query,
            {"payload": 1, "type": 1, "correlation_id": 1, "occurred_at": 1, "state": 1},
        ).sort("occurred_at", ASCENDING)
        return await cursor.limit(limit).to_list()

    async def mark_published(self, event_ids: list[str], *, at: datetime) -> None:
        """Record the broker's confirms (one update of many documents; only the relay writes this field)."""
        if event_ids:
            # The `relay_pending` term is there for FerretDB v1: pushed down, it spares reading every event.
            await self._events.update_many(
                {"_id": {"$in": event_ids}, **PENDING}, {"$set": {"published_at": at, "relay_pending": False}}
            )

    async def mark_each_published(self, event_ids: list[str], *, at: datetime) -> None:
        """Record the broker's confirms with one update by id per event (20 to a command, two commands at a time).

        For many events while many are pending (the relay's sweep after an outage): each costs a lookup by id, where
        one `update_many` would read every pending event on FerretDB v1, once per call.
        """
        marks = [
            self._marks.write(UpdateOne({"_id": i}, {"$set": {"published_at": at, "relay_pending": False}}))
            for i in event_ids
        ]
        results = await asyncio.gather(*marks, return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed  # what is not marked stays pending: the next sweep publishes it again

    async def take_sweep_slot(self, slot: int, *, holder: str, at: datetime, keep: int = 3000) -> bool:
        """True when `holder` has the relay's sweep for time slot `slot`: the first to insert the slot has it.

        A unique insert, the one write that is atomic on FerretDB v1 too (design.md). The winner also clears slots
        older than `keep` slots (a day at 30 s), since FerretDB v1 has no TTL index.
        """
        if not await insert_new(self._sweeps, {"_id": slot, "holder": holder, "taken_at": at}):
            taken = await self._sweeps.find_one({"_id": slot}, {"holder": 1})
            return taken is not None and taken["holder"] == holder
        await self._sweeps.delete_many({"_id": {"$lt": slot - keep}})
        return True

    async def release_sweep_slots(self, *, holder: str) -> None:
        """Give back the slots `holder` has, so that another relay can take the current one at once."""
        await self._sweeps.delete_many({"holder": holder})

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many events wait for publishing, and when the oldest of them happened."""
        count = await self._events.count_documents(PENDING)
        oldest = await self._events.find_one(PENDING, {"occurred_at": 1}, sort=[("occurred_at", 1)])
        return count, (oldest["occurred_at"] if oldest else None)
