from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from booking import domain
from booking.store import JobRequests
from tests.support.ids import unique
from tests.support.requests import CLIENT, NOW, a_request

pytestmark = pytest.mark.integration


@pytest.fixture
async def projection(mongo: AsyncMongoClient[dict[str, Any]]) -> Any:
    db = mongo[unique("projection").replace("-", "_")]
    store = JobRequests(db)
    await store.create_indexes()
    yield store
    await mongo.drop_database(db.name)


async def test_a_change_replaces_the_stored_version_and_an_older_write_never_goes_back(projection: Any) -> None:
    submitted = a_request()
    cancelled = domain.cancel(submitted, by=CLIENT, now=NOW, reason=None)
    await projection.save(submitted)
    await projection.save(cancelled)
    await projection.save(submitted)  # late, older: ignored

    stored = await projection.get(submitted.id)
    assert stored is not None
    assert (stored.version, stored.status) == (cancelled.version, domain.Status.CANCELLED)


async def test_a_change_that_overtakes_the_first_write_still_ends_on_the_newest_version(projection: Any) -> None:
    # The cancel's write runs before, or while, the submit's first write lands: in both orders, many times over.
    for n in range(40):
        request = replace(a_request(), id=unique("jr"))
        newer = domain.cancel(request, by=CLIENT, now=NOW, reason=None)
        first, second = (newer, request) if n % 2 else (request, newer)
        await asyncio.gather(projection.save(first), projection.save(second))
        assert await projection.version(request.id) == newer.version
