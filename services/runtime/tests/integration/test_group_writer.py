from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.errors import ConnectionFailure, PyMongoError, WriteError

from service_runtime.mongo import GroupWriter, connect_mongo, ensure_indexes
from tests.support.ids import unique
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

Client = AsyncMongoClient[dict[str, Any]]


@pytest.fixture
async def collection(mongo: Client) -> Any:
    db = mongo[unique("group_insert").replace("-", "_")]
    await ensure_indexes(db["docs"], [IndexModel([("key", 1)], unique=True)])
    yield db["docs"]
    await mongo.drop_database(db.name)


async def test_concurrent_inserts_go_out_together_and_each_caller_gets_its_own_answer(collection: Any) -> None:
    await collection.insert_one({"_id": "old", "key": "taken"})
    inserter = GroupWriter(collection, max_batch=50, in_flight=1)
    docs = [{"_id": f"d{i}", "key": f"k{i}"} for i in range(120)]
    docs[7]["key"] = "taken"  # a unique index other than _id says no
    docs[60]["_id"] = "old"  # the id itself exists

    answers = await asyncio.gather(*(inserter.insert(d) for d in docs))

    assert [i for i, ok in enumerate(answers) if not ok] == [7, 60]
    assert await collection.count_documents({}) == 1 + 118


async def test_a_rejection_other_than_a_duplicate_fails_only_its_own_caller(collection: Any) -> None:
    inserter = GroupWriter(collection)
    good = {"_id": "good", "key": "a"}
    bad = {"_id": ["an array is no id"], "key": "b", "email": "ann.secret@client.example"}

    answers = await asyncio.gather(inserter.insert(good), inserter.insert(bad), return_exceptions=True)

    assert answers[0] is True
    assert isinstance(answers[1], WriteError)
    assert "secret" not in repr(answers[1])  # its text goes into logs and DLQ headers: never the document
    assert await collection.find_one({"_id": "good"}) is not None


async def test_a_write_the_server_cannot_store_fails_only_its_own_caller_and_the_others_are_stored(
    collection: Any,
) -> None:
    inserter = GroupWriter(collection, in_flight=1)
    docs = [{"_id": f"n{i}", "key": f"n{i}", "text": "fine"} for i in range(5)]
    docs[2]["text"] = "a\u0000b"  # FerretDB v1 (its PostgreSQL) refuses NUL with an error for the whole command

    answers = await asyncio.gather(*(inserter.insert(d) for d in docs), return_exceptions=True)

    assert [a for i, a in enumerate(answers) if i != 2] == [True] * 4, answers  # stored, whether before or after
    assert await collection.count_documents({"_id": {"$in": ["n0", "n1", "n3", "n4"]}}) == 4
    stored = await collection.find_one({"_id": "n2"})
    # MongoDB stores a NUL; FerretDB v1 refuses it, to this caller alone.
    assert (answers[2] is True and stored is not None) or (isinstance(answers[2], PyMongoError) and stored is None)


async def test_a_lost_connection_fails_every_caller_of_the_batch_and_the_next_insert_works(
    servers: Servers, collection: Any
) -> None:
    target_url = urlsplit(servers.mongodb_url)
    proxy = await FaultProxy(target_url.hostname or "127.0.0.1", target_url.port or 27017).start()
    client = connect_mongo(with_port(servers.mongodb_url, proxy.port), app_name="test")
    try:
        inserter = GroupWriter(client[collection.database.name]["docs"])
        assert await inserter.insert({"_id": "before", "key": "before"}) is True
        proxy.cut()  # open connections are dropped, new ones refused
        answers = await asyncio.gather(
            *(inserter.insert({"_id": f"x{i}", "key": f"x{i}"}) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(a, PyMongoError) for a in answers), answers
        proxy.heal()
        assert await inserter.insert({"_id": "after", "key": "after"}) is True
    finally:
        await client.close()
        await proxy.close()


async def test_a_database_that_stops_answering_fails_the_batch_after_the_timeout_instead_of_holding_it(
    servers: Servers, collection: Any
) -> None:
    target_url = urlsplit(servers.mongodb_url)
    proxy = await FaultProxy(target_url.hostname or "127.0.0.1", target_url.port or 27017).start()
    # The server answers the driver's health checks but not the command, as FerretDB v1 deadlocked on its
    # PostgreSQL pool does.
    client = connect_mongo(with_port(servers.mongodb_url, proxy.port), app_name="test", timeout_seconds=1)
    try:
        inserter = GroupWriter(client[collection.database.name]["docs"])
        assert await inserter.insert({"_id": "before", "key": "before"}) is True
        proxy.stall(spare_first=1)  # the driver's monitor (the first connection) still gets answers
        answers = await asyncio.wait_for(
            asyncio.gather(
                *(inserter.insert({"_id": f"s{i}", "key": f"s{i}"}) for i in range(3)), return_exceptions=True
            ),
            timeout=30,  # a hang guard, far beyond the 1 s timeout: without it this waited for the health check
        )
        assert all(isinstance(a, ConnectionFailure) and a.timeout for a in answers), answers
        proxy.heal()
        assert await inserter.insert({"_id": "after", "key": "after"}) is True
    finally:
        proxy.heal()
        await client.close()
        await proxy.close()


async def test_a_write_right_after_a_batch_finished_is_sent_and_does_not_wait_forever(collection: Any) -> None:
    inserter = GroupWriter(collection, in_flight=1)

    async def one_after_another() -> None:
        for n in range(20):  # the caller resumes before the finished sender task's done-callbacks run
            assert await inserter.insert({"_id": f"s{n}", "key": f"s{n}"}) is True

    await asyncio.wait_for(one_after_another(), timeout=10)


class _Inserts(monitoring.CommandListener):
    """Counts the insert commands a client sends."""

    def __init__(self) -> None:
        self.commands = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands += event.command_name == "insert"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize(("linger", "most_commands"), [(0.0, None), (0.2, 2)])
async def test_writes_that_trickle_in_within_the_linger_share_one_round_trip(
    servers: Servers, collection: Any, linger: float, most_commands: int | None
) -> None:
    inserts = _Inserts()
    client: Client = AsyncMongoClient(servers.mongodb_url, event_listeners=[inserts])
    try:
        inserter = GroupWriter(client[collection.database.name]["docs"], linger=linger)

        async def after(delay: float, n: int) -> bool:
            await asyncio.sleep(delay)
            return await inserter.insert({"_id": f"t{n}", "key": f"t{n}"})

        # Five writes 10 ms apart: each finds the previous one's round trip over, unless they wait for company. The
        # first comes after a quiet spell and goes at once; the second waits, and the rest join it.
        answers = await asyncio.gather(*(after(0.01 * n, n) for n in range(5)))

        assert answers == [True] * 5
        assert await collection.count_documents({}) == 5
        if most_commands is None:
            assert inserts.commands > 1  # without a linger each left on its own (the test can tell the two apart)
        else:
            assert inserts.commands <= most_commands
    finally:
        await client.close()


async def test_a_retired_index_is_dropped_once_its_successor_exists_and_again_is_a_no_op(mongo: Client) -> None:
    db = mongo[unique("retire_index").replace("-", "_")]
    try:
        docs = db["docs"]
        await ensure_indexes(docs, [IndexModel([("a", 1), ("b", 1)])])  # what an earlier release declared
        successor = IndexModel([("a", 1), ("b", 1), ("_id", 1)])
        for _ in range(2):  # replicas starting one after another
            await ensure_indexes(docs, [successor], retired=["a_1_b_1", "never_existed_1"])
            names = {index["name"] async for index in await docs.list_indexes()}
            assert names == {"_id_", "a_1_b_1__id_1"}
    finally:
        await mongo.drop_database(db.name)


async def test_writes_waiting_for_a_lingering_sender_that_is_cancelled_are_cancelled_too(collection: Any) -> None:
    inserter = GroupWriter(collection, linger=5.0)
    assert await inserter.insert({"_id": "w0", "key": "w0"}) is True  # the writes below come close after it
    first = asyncio.ensure_future(inserter.insert({"_id": "w1", "key": "w1"}))
    second = asyncio.ensure_future(inserter.insert({"_id": "w2", "key": "w2"}))
    await asyncio.sleep(0.05)  # both wait for the lingering sender
    for sender in list(inserter._senders):
        sender.cancel()  # as the loop's shutdown does

    done, _ = await asyncio.wait([first, second], timeout=2)

    assert done == {first, second}  # answered (cancelled), not left waiting for a sender that is gone
    assert first.cancelled() and second.cancelled()


async def test_a_write_after_a_quiet_spell_does_not_wait_for_company(collection: Any) -> None:
    inserter = GroupWriter(collection, linger=5.0)
    # Alone, and long after any other write: it leaves at once instead of lingering 5 s.
    assert await asyncio.wait_for(inserter.insert({"_id": "q1", "key": "q1"}), timeout=2) is True
