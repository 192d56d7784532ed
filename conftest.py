"""Session-wide fixtures: the real servers, and clients to look into them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

from tests.support.mailpit import Mailpit
from tests.support.servers import Servers, resolve


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The real RabbitMQ, MongoDB-compatible server and SMTP server of this run."""
    with ExitStack() as stack:
        yield resolve(stack)


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
