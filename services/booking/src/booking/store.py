"""Booking's other collections: the catalogue (businesses, clients, pets, services) and the job request projection."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from booking.codec import from_document, to_document
from booking.domain import Business, Client, JobRequest, Pet, Service, Status
from service_runtime.mongo import GroupWriter, ensure_indexes

Document = dict[str, Any]


class Catalogue:
    """Businesses, their clients, pets and service types."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._businesses = db["businesses"]
        self._clients = db["clients"]
        self._pets = db["pets"]
        self._services = db["services"]

    async def create_indexes(self) -> None:
        """Lookups are by owner."""
        await self._clients.create_index([("business_id", ASCENDING)])
        await self._pets.create_index([("client_id", ASCENDING)])
        await self._services.create_index([("business_id", ASCENDING)])

    async def business(self, business_id: str) -> Business | None:
        doc = await self._businesses.find_one({"_id": business_id})
        return Business(doc["_id"], doc["name"], doc["admin_email"], doc["timezone"]) if doc else None

    async def client(self, business_id: str, client_id: str) -> Client | None:
        doc = await self._clients.find_one({"_id": client_id, "business_id": business_id})
        return Client(doc["_id"], doc["name"], doc["email"]) if doc else None

    async def services(self, business_id: str) -> list[Service]:
        docs = await self._services.find({"business_id": business_id}).sort("name", ASCENDING).to_list()
        return [Service(d["_id"], d["name"], d["duration_minutes"]) for d in docs]

    async def pets(self, business_id: str, client_id: str) -> list[Pet]:
        # By business too: a client id is one business's, and nothing else stops a token naming another's.
        docs = (
            await self._pets.find({"client_id": client_id, "business_id": business_id})
            .sort("name", ASCENDING)
            .to_list()
        )
        return [Pet(d["_id"], d["name"], d["species"]) for d in docs]

    async def upsert(self, collection: str, doc: Document) -> None:
        """Create or replace one catalogue document by id (seed data)."""
        await {
            "businesses": self._businesses,
            "clients": self._clients,
            "pets": self._pets,
            "services": self._services,
        }[collection].replace_one({"_id": doc["_id"]}, doc, upsert=True)


class JobRequests:
    """The projection the schedule views read: one document per request, carrying its version."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._requests = db["job_requests"]
        self._inserts = GroupWriter(self._requests)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self._requests,
            [
                IndexModel([("client_id", ASCENDING), ("date", ASCENDING)]),
                IndexModel(
                    [
                        ("business_id", ASCENDING),
                        ("status", ASCENDING),
                        ("date", ASCENDING),
                        ("start_time", ASCENDING),
                        ("_id", ASCENDING),
                    ]
                ),
            ],
            retired=["business_id_1_status_1_date_1"],  # a prefix of the one above (before list paging)
        )

    async def save(self, request: JobRequest, *, attempts: int = 3) -> None:
        """Write the request unless the stored one is as new or newer.

        A change of a stored request costs one round trip (the replace). Only the winner of a version writes it (or a
        repair writing the stream's latest, which is the same content: a refusal or a repeat decided on the stream), and
        the domain allows no two changes after a submit, so no two replaces of different versions of one request
        race: the one race left, a change overtaking the submit's first write, ends in the insert's duplicate key and
        a second replace. FerretDB v1 could lose one of two racing replaces (design.md); a change of the rules that
        allowed such races would need the read-back this method had before (see the relay, which checks what it did
        not see written).
        """
        doc = to_document(request)
        for _ in range(attempts):
            replaced = await self._requests.replace_one({"_id": request.id, "version": {"$lt": request.version}}, doc)
            if replaced.matched_count or await self._inserts.insert(doc):
                return
            if await self.version(request.id) >= request.version:
                return  # as new or newer is there; otherwise an older first write landed in between: replace it

    async def version(self, request_id: str) -> int:
        """The stored version of the request's projection, 0 when it has none."""
        doc = await self._requests.find_one({"_id": request_id}, {"version": 1})
        return int(doc["version"]) if doc else 0

    async def get(self, request_id: str) -> JobRequest | None:
        doc = await self._requests.find_one({"_id": request_id})
        return from_document(doc) if doc else None

    async def of_client(self, business_id: str, client_id: str, *, start: date, end: date) -> list[JobRequest]:
        """The client's requests (with this business) from `start` (inclusive) to `end` (exclusive), by day and
        time."""
        docs = (
            await self._requests.find(
                {
                    "client_id": client_id,
                    "business_id": business_id,
                    "date": {"$gte": start.isoformat(), "$lt": end.isoformat()},
                }
            )
            .sort([("date", ASCENDING), ("start_time", ASCENDING)])
            .to_list()
        )
        return [from_document(d) for d in docs]

    async def of_business(
        self,
        business_id: str,
        *,
        status: Status,
        limit: int,
        after: tuple[datetime, str | None] | None = None,
        before: tuple[datetime, str | None] | None = None,
    ) -> list[JobRequest]:
        """The business's requests in one status: soonest first for open ones, newest cancellation first for cancelled
        ones; requests of one time are in id order.

        The next page starts past the last request you have: `after` (its date and start time as a wall-clock
        datetime, and its id) for open ones, `before` (its `cancelled_at` and id) for cancelled ones. Without the id,
        only requests of a later (earlier) time follow.
        """
        query: Document = {"business_id": business_id, "status": status.value}
        if status is Status.CANCELLED:
            if after is not None:
                raise ValueError("the cancelled list pages with before (newest cancellation first)")
            sort = [("cancelled_at", DESCENDING), ("_id", DESCENDING)]
            if before is not None:
                at, last_id = before
                query["$or"] = [{"cancelled_at": {"$lt": at}}]
                if last_id is not None:
                    query["$or"].append({"cancelled_at": at, "_id": {"$lt": last_id}})
        else:
            if before is not None:
                raise ValueError("the requested and scheduled lists page with after (soonest first)")
            sort = [("date", ASCENDING), ("start_time", ASCENDING), ("_id", ASCENDING)]
            if after is not None:
                at, last_id = after
                day, start = at.date().isoformat(), at.strftime("%H:%M")
                query["$or"] = [{"date": {"$gt": day}}, {"date": day, "start_time": {"$gt": start}}]
                if last_id is not None:
                    query["$or"].append({"date": day, "start_time": start, "_id": {"$gt": last_id}})
        docs = await self._requests.find(query).sort(sort).limit(limit).to_list()
        return [from_document(d) for d in docs]
