"""Session-wide fixtures: the real servers, and clients to look into them."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import PyMongoError

from tests.support.ids import ISSUED
from tests.support.mailpit import Mailpit
from tests.support.servers import Servers, resolve
from tests.support.vhosts import own_vhost


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The real RabbitMQ, MongoDB-compatible server and SMTP server of this run.

    AMQP goes to a virtual host of the session's own, so that no test publishes where a running `make run`
    system (or another test run) consumes, and nothing is left behind: the vhost goes with its queues.
    """
    with ExitStack() as stack:
        found = resolve(stack)
        base = replace(found, amqp_base_url=found.amqp_url)
        _, amqp_url = stack.enter_context(own_vhost(base, "tests"))
        yield replace(base, amqp_url=amqp_url)
        _drop_databases_of_this_session(found.mongodb_url)


def _drop_databases_of_this_session(mongodb_url: str) -> None:
    """Drop the databases whose names carry an id this session made (other sessions' databases stay)."""
    if not ISSUED:
        return
    try:
        with MongoClient(mongodb_url, serverSelectionTimeoutMS=3000) as client:
            for name in client.list_database_names():
                if any(token in name for token in ISSUED):
                    client.drop_database(name)
    except PyMongoError as exc:  # the servers may be gone already; leftovers are harmless
        warnings.warn(f"could not drop this session's test databases: {exc!r}", stacklevel=1)


@pytest.fixture(scope="session")
async def mongo(servers: Servers) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def amqp(servers: Servers) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(servers.amqp_url)
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
async def mailpit(servers: Servers) -> AsyncIterator[Mailpit]:
    reader = Mailpit(servers.mailpit_url)
    yield reader
    await reader.close()
