"""RabbitMQ virtual hosts of a test's own: its exchange, queues and consumers are invisible to every other test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx

from tests.support.ids import unique
from tests.support.servers import Servers


@contextmanager
def own_vhost(servers: Servers, prefix: str) -> Iterator[tuple[str, str]]:
    """Create a virtual host (guest may do everything in it); yield (name, AMQP URL); delete it with its queues."""
    name = unique(prefix)
    with httpx.Client(base_url=servers.rabbitmq_management_url, auth=("guest", "guest"), timeout=10) as api:
        api.put(f"/api/vhosts/{name}").raise_for_status()
        api.put(
            f"/api/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
        try:
            base = servers.amqp_base_url or servers.amqp_url
            yield name, f"{base.rstrip('/')}/{quote(name, safe='')}"
        finally:
            api.delete(f"/api/vhosts/{name}")
