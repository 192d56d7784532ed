"""MongoDB connection (PyMongo's native async API) and the write errors services test for."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from typing import Any

import bson
from pymongo import AsyncMongoClient, IndexModel, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
    WriteError,
)

DUPLICATE_KEY = 11000


def connect_mongo(
    url: str, *, app_name: str, max_pool_size: int = 20, timeout_seconds: float = 30.0, **options: Any
) -> AsyncMongoClient[dict[str, Any]]:
    """Build a client (lazy: connects on first use); datetimes come back timezone-aware UTC.

    The pool bounds how many commands one process runs at once: FerretDB v1 can deadlock when the commands of
    all clients together outgrow its PostgreSQL pool (50 by default). `timeout_seconds` bounds each wait for a
    reply (PyMongo's `socketTimeoutMS`; a NetworkTimeout, a ConnectionFailure, when it runs out): a server that
    still answers the driver's health checks but never finishes a command (such a FerretDB deadlock) would
    otherwise hold every writer of a collection, the consumers' messages and the relay for good. PyMongo retries a
    read or a write once after such an error (MongoDB; FerretDB v1 has no retryable writes), so an operation can
    wait twice that. Not `timeoutMS` (the whole operation): with it, an operation against a database that is down
    keeps selecting a server for all of that time instead of failing after `serverSelectionTimeoutMS` (5 s).
    """
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        maxPoolSize=max_pool_size,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        socketTimeoutMS=int(timeout_seconds * 1000),
        **options,
    )


INDEX_NOT_FOUND = 27

DATABASE_UNAVAILABLE: tuple[type[PyMongoError], ...] = (ConnectionFailure, ExecutionTimeout, WriteConcernError)
"""Errors that are the database's state, not the request's or the message's fault: down, unreachable, out of time,
or not as durable as asked. The API answers them 503; consumers wait and retry without using up attempts."""


def may_be_outage(exc: BaseException) -> bool:
    """Whether an error outside DATABASE_UNAVAILABLE may still be the database's state: a whole command refused with
    no code or FerretDB's InternalError (1), which is what every command gets while FerretDB's PostgreSQL is down
    (MongoDB would be unreachable instead). Never a write error about one document (a duplicate, a refused value):
    those are the message's or the request's, outage or not. A ping then tells (consumer and API error handling)."""
    return (
        isinstance(exc, OperationFailure) and not isinstance(exc, WriteError | BulkWriteError) and exc.code in (None, 1)
    )


async def ping(client: AsyncMongoClient[dict[str, Any]], *, timeout: float = 2.0) -> bool:
    """True when the server answers a ping within `timeout` seconds."""
    try:
        await asyncio.wait_for(client.admin.command("ping"), timeout)
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
    return True


async def ensure_indexes(
    collection: AsyncCollection[dict[str, Any]], indexes: list[IndexModel], *, retired: Sequence[str] = ()
) -> None:
    """Create indexes one command each (FerretDB v1 panics on a multi-index createIndexes whose indexes exist), then
    drop the `retired` ones (by name) where they are still there: an index an earlier release declared and a new
    one replaces costs every write and serves nothing. Both idempotent, so replicas starting together may all run it.

    Each waits at most MONGODB_TIMEOUT_SECONDS like any command: a new index on a large collection is better built
    ahead of the release that needs it (or started with a longer timeout once).
    """
    for index in indexes:
        await collection.create_indexes([index])
    if retired:
        existing = {index["name"] async for index in await collection.list_indexes()}
        for name in retired:
            if name in existing:
                try:
                    await collection.drop_index(name)
                except OperationFailure as exc:
                    if exc.code != INDEX_NOT_FOUND:  # not found: another replica dropped it first
                        raise


async def insert_new(collection: AsyncCollection[dict[str, Any]], document: dict[str, Any]) -> bool:
    """Insert one document alone (rare writes: a lease, a takeover); False when a unique index says it is there.

    The write that decides who wins, atomic on FerretDB v1 too (design.md); concurrent writes go through GroupWriter.
    """
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:
        return False
    return True


WriteOperation = InsertOne[dict[str, Any]] | ReplaceOne[dict[str, Any]] | UpdateOne


class GroupWriter:
    """Group commit for one collection: what concurrent callers write goes out together as one unordered bulk write.

    Each caller still gets its own answer, as if it had written alone: True when its write was applied, False when a
    unique index refused it (an insert or upsert of what is already there: the idempotent repeat), its own WriteError
    for any other rejection, or the batch's error (connection lost, server down, a write concern not met) when the
    command failed, in which case any write of the batch may or may not have been applied (or kept), exactly as for
    a lone write that failed.

    By default nothing waits for a batch to fill: a batch is whatever arrived while the previous one was on the wire,
    so a lone write leaves at the next turn of the loop and batches grow only under load. With `linger` (seconds) a
    batch waits that long for company before it leaves, when its first write came within `linger` of the write
    before it (writes are coming close together; one after a quiet spell goes at once): where a caller can afford a
    few milliseconds (a consumer's effects, not an HTTP answer), a moderate load then shares round trips too.

    On FerretDB v1 a round trip costs both sides far more than the work in it (100 documents in one insert: ~37,000
    documents/s; one by one: ~1,500/s); each write is still its own statement there, so a unique index stays atomic
    per document. Keep `max_batch` at 20 or
    less for updates: FerretDB v1 can deadlock on an update command with more statements than its connection pool.
    """

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        *,
        max_batch: int = 100,
        in_flight: int = 2,
        linger: float = 0.0,
    ) -> None:
        self._collection = collection
        self._linger = linger
        self._last_write = -math.inf
        self._max_batch = max_batch
        self._max_in_flight = in_flight
        self._waiting: list[tuple[WriteOperation, asyncio.Future[bool]]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._gathering: asyncio.Event | None = None  # set while a sender lingers; set() when its batch is full

    async def insert(self, document: dict[str, Any]) -> bool:
        """Store `document` (which carries its `_id`); False when a unique index says it is already there."""
        return await self.write(InsertOne(document))

    async def write(self, operation: WriteOperation) -> bool:
        """Apply one insert, replace or update; False when a unique index refused it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((operation, answer))
        # Company is likely only when writes are coming close together: one after a quiet spell goes at once.
        now, last = loop.time(), self._last_write
        self._last_write = now
        if self._gathering is not None:  # a sender is lingering for company: this write goes with it
            if len(self._waiting) >= self._max_batch:
                self._gathering.set()
        elif len(self._senders) < self._max_in_flight:
            gathering = None
            if self._linger > 0 and now - last < self._linger and len(self._waiting) < self._max_batch:
                # Set here, not when the sender starts: the writes of this same loop turn join it too.
                gathering = self._gathering = asyncio.Event()
            self._senders.add(asyncio.create_task(self._send_while_waiting(gathering)))
        return await answer

    async def _send_while_waiting(self, gathering: asyncio.Event | None = None) -> None:
        try:
            if gathering is not None:  # linger for company, until the batch is full
                try:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._linger):  # not wait_for: 3.11's can swallow a cancellation
                            await gathering.wait()
                finally:
                    if self._gathering is gathering:
                        self._gathering = None
            while self._waiting:
                batch = [(op, answer) for op, answer in self._waiting[: self._max_batch] if not answer.done()]
                del self._waiting[: self._max_batch]
                if batch:
                    await self._send(batch)
        except asyncio.CancelledError:
            # Shutdown: what waits for this sender, with no other sender left to take it, is cancelled too, instead
            # of waiting for a write that may never come.
            for answer in self._orphans():
                answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - a failure beyond a batch's own (its replay's lookups): the writes
            # queued behind it get it too; its own batch has it already. Not re-raised: every caller has its answer.
            for answer in self._orphans():
                answer.set_exception(exc)
        finally:
            # Leave the set in the same step that sees nothing waiting: a done-callback would run a loop turn
            # later, and a write queued in between would find every sender slot taken and wait forever.
            self._senders.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _orphans(self) -> list[asyncio.Future[bool]]:
        """Take the unanswered writes waiting when this sender ends abnormally and no other sender is left."""
        self._senders.discard(asyncio.current_task())  # type: ignore[arg-type]
        if self._senders:
            return []
        waiting, self._waiting = self._waiting, []
        return [answer for _, answer in waiting if not answer.done()]

    async def _send(self, batch: list[tuple[WriteOperation, asyncio.Future[bool]]]) -> None:
        errors: dict[int, dict[str, Any]] = {}
        try:
            await self._collection.bulk_write([op for op, _ in batch], ordered=False)
        except BulkWriteError as exc:
            errors = {e["index"]: e for e in exc.details.get("writeErrors", [])}
            if concern := exc.details.get("writeConcernErrors"):
                # Applied on the primary but not as durably as asked (MongoDB: a replication timeout, a failover):
                # what was applied may yet be rolled back, so no write of the batch may count as done.
                failed = WriteConcernError(concern[0].get("errmsg", "write concern error"), concern[0].get("code"))
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(failed)
                return
        except OperationFailure as exc:
            if len(batch) > 1 and not isinstance(exc, DATABASE_UNAVAILABLE):
                # FerretDB v1 answers a write it cannot store (a NUL in a string, say) with an error for the whole
                # command, after storing the writes before it: each write goes again alone, so that only the bad
                # one fails.
                await self._one_by_one(batch, exc)
                return
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except BaseException as exc:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for i, (_, answer) in enumerate(batch):
            if answer.done():
                continue
            error = errors.get(i)
            if error is None:
                answer.set_result(True)
            elif error.get("code") == DUPLICATE_KEY:
                answer.set_result(False)
            else:
                # Not PyMongo's whole entry: it carries the document itself (`op`), names and emails included, and
                # the error's text (in logs and dead-letter headers) would quote it.
                details: dict[str, Any] = {k: error[k] for k in ("index", "code", "codeName", "errmsg") if k in error}
                answer.set_exception(WriteError(error.get("errmsg", "write error"), error.get("code"), details))

    async def _one_by_one(self, batch: list[tuple[WriteOperation, asyncio.Future[bool]]], error: Exception) -> None:
        """Send each write of a batch the server refused as a whole alone; an insert the batch had already stored
        answers True (not a repeat's False). Two failures in a row mean the server refuses everything: the rest get
        the batch's error without trying."""
        failures = 0
        try:
            for op, answer in batch:
                if answer.done():
                    continue
                if failures >= 2:
                    answer.set_exception(error)
                    continue
                probe: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                await self._send([(op, probe)])
                if probe.exception() is not None:
                    failures += 1
                    answer.set_exception(probe.exception())  # type: ignore[arg-type]
                    continue
                failures = 0
                stored_by_us = not probe.result() and await self._holds(op)
                answer.set_result(probe.result() or stored_by_us)
        except BaseException as exc:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            raise

    async def _holds(self, op: WriteOperation) -> bool:
        """True when `op` is an insert whose very document is stored (as it would be stored: times to milliseconds)."""
        if not isinstance(op, InsertOne):
            return False
        ours: dict[str, Any] = op._doc
        stored = await self._collection.find_one({"_id": ours["_id"]})
        options = self._collection.codec_options
        return bool(stored == bson.decode(bson.encode(ours, codec_options=options), codec_options=options))


__all__ = [
    "DATABASE_UNAVAILABLE",
    "GroupWriter",
    "InsertOne",
    "ReplaceOne",
    "UpdateOne",
    "connect_mongo",
    "ensure_indexes",
    "insert_new",
    "may_be_outage",
    "ping",
]
