"""Session-wide fixtures: the real servers, and clients to look into them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from pymongo import AsyncMongoClient

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
