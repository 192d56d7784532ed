"""GroupWriter's answers to what the server reports back, with a collection that reports a given outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, WriteConcernError

from service_runtime.mongo import GroupWriter


class _Reports:
    """Stands in for a collection whose bulk writes come back with a set report (the server's side is not tested
    here: tests/integration/test_group_writer.py runs against the real one)."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.details = details

    async def bulk_write(self, operations: list[Any], *, ordered: bool) -> None:
        raise BulkWriteError(self.details)


async def test_a_write_concern_error_fails_every_write_of_the_batch_even_those_applied() -> None:
    # MongoDB applied both inserts on the primary, then could not replicate them in time: either may be rolled back.
    report = {
        "writeErrors": [],
        "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication timed out"}],
        "nInserted": 2,
    }
    writer = GroupWriter(_Reports(report), in_flight=1)  # type: ignore[arg-type]

    answers = await asyncio.gather(writer.insert({"_id": 1}), writer.insert({"_id": 2}), return_exceptions=True)

    assert all(isinstance(a, WriteConcernError) for a in answers), answers


async def test_duplicates_and_rejections_are_answered_per_write() -> None:
    report = {
        "writeErrors": [
            {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"},
            {"index": 2, "code": 2, "errmsg": "bad value"},
        ],
        "writeConcernErrors": [],
        "nInserted": 1,
    }
    writer = GroupWriter(_Reports(report), in_flight=1)  # type: ignore[arg-type]

    answers = await asyncio.gather(*(writer.insert({"_id": i}) for i in range(3)), return_exceptions=True)

    assert answers[0] is False and answers[1] is True
    with pytest.raises(Exception, match="bad value"):
        raise answers[2]  # type: ignore[misc]


async def test_a_rejected_write_s_error_does_not_quote_its_document() -> None:
    # PyMongo puts the document into each write error's entry (`op`); the error's text goes into logs and DLQ headers.
    report = {
        "writeErrors": [
            {"index": 0, "code": 2, "errmsg": "bad value", "op": {"_id": 0, "email": "ann.secret@client.example"}},
        ],
        "writeConcernErrors": [],
        "nInserted": 0,
    }
    writer = GroupWriter(_Reports(report), in_flight=1)  # type: ignore[arg-type]

    [answer] = await asyncio.gather(writer.insert({"_id": 0}), return_exceptions=True)

    assert isinstance(answer, Exception) and "bad value" in str(answer)
    assert "secret" not in str(answer) and "secret" not in repr(answer), repr(answer)


class _RefusesBatchesThenLosesTheServer:
    """A batch of several is refused as a whole (as FerretDB v1 does for a value it cannot store); each write alone
    then comes back as a duplicate, and the lookup that would tell whose it is finds the server gone."""

    def __init__(self) -> None:
        self.first = asyncio.Event()

    async def bulk_write(self, operations: list[Any], *, ordered: bool) -> None:
        if len(operations) > 1:
            self.first.set()
            await asyncio.sleep(0.05)  # on the wire while more writes queue behind it
            raise OperationFailure("cannot store a value of the batch")
        raise BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}], "writeConcernErrors": []})

    async def find_one(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionFailure("server gone")


async def test_writes_queued_behind_a_sender_that_fails_get_its_error_not_a_cancellation() -> None:
    collection = _RefusesBatchesThenLosesTheServer()
    writer = GroupWriter(collection, in_flight=1)  # type: ignore[arg-type]
    batch = [asyncio.ensure_future(writer.insert({"_id": i})) for i in range(2)]
    await collection.first.wait()
    queued = [asyncio.ensure_future(writer.insert({"_id": i})) for i in range(2, 4)]

    answers = await asyncio.wait_for(asyncio.gather(*batch, *queued, return_exceptions=True), timeout=5)

    assert all(isinstance(a, ConnectionFailure) for a in answers), answers  # every caller answered, none cancelled
