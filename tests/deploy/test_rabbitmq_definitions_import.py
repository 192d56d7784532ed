"""A real broker accepts the definitions file, and the services' own declarations then match it (no 406)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import aio_pika
import httpx
import pytest

from audit.app import topology as audit_topology
from audit.settings import Settings as AuditSettings
from notifier.app import topology as notifier_topology
from notifier.settings import Settings as NotifierSettings
from service_runtime.amqp import declare_consumer_topology, declare_events_exchange
from tests.support.servers import Servers
from tests.support.waiting import eventually

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"

pytestmark = pytest.mark.integration


@pytest.fixture
async def fresh_vhost(servers: Servers) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    amqp = urlparse(servers.amqp_url)
    auth = (amqp.username or "guest", amqp.password or "guest")
    vhost = f"deploy-check-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=f"{servers.rabbitmq_management_url}/api", auth=auth, timeout=30) as api:
        (await api.put(f"/vhosts/{vhost}")).raise_for_status()
        (
            await api.put(f"/permissions/{vhost}/{auth[0]}", json={"configure": ".*", "write": ".*", "read": ".*"})
        ).raise_for_status()
        try:
            yield api, vhost
        finally:
            await api.delete(f"/vhosts/{vhost}")


async def test_broker_imports_the_definitions_and_the_services_declare_the_same_topology(
    servers: Servers, fresh_vhost: tuple[httpx.AsyncClient, str]
) -> None:
    api, vhost = fresh_vhost
    definitions = json.loads(DEFINITIONS.read_text())
    body = {key: definitions[key] for key in ("exchanges", "queues", "bindings", "policies")}
    response = await api.post(f"/definitions/{vhost}", json=body)
    assert response.status_code in (200, 201, 204), response.text

    imported = {q["name"]: q["arguments"] for q in (await api.get(f"/queues/{vhost}")).json()}
    assert imported == {q["name"]: q["arguments"] for q in definitions["queues"]}

    amqp = urlparse(servers.amqp_url)
    connection = await aio_pika.connect(amqp._replace(path="/" + quote(vhost, safe="")).geturl())
    try:
        channel = await connection.channel()
        await declare_events_exchange(channel)
        for topology in (notifier_topology(NotifierSettings()), audit_topology(AuditSettings())):
            await declare_consumer_topology(channel, topology)  # an inequivalent argument closes with 406
        assert not channel.is_closed
    finally:
        await connection.close()
    bindings = {
        (b["source"], b["destination"], b["routing_key"])
        for b in (await api.get(f"/bindings/{vhost}")).json()
        if b["source"]
    }
    assert bindings == {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}


async def test_the_dead_letter_queues_get_the_policy_that_lifts_the_delivery_limit_and_the_work_queues_do_not(
    fresh_vhost: tuple[httpx.AsyncClient, str],
) -> None:
    # `dlq list` puts what it looked at back (a return). RabbitMQ 4 gives quorum queues a delivery limit of 20 by
    # default and drops a message returned more often when the queue has no dead-letter exchange, as a DLQ has not:
    # the definitions' policy lifts that limit on the dead-letter queues (this broker accepts and applies it).
    api, vhost = fresh_vhost
    definitions = json.loads(DEFINITIONS.read_text())
    body = {key: definitions[key] for key in ("exchanges", "queues", "bindings", "policies")}
    assert (await api.post(f"/definitions/{vhost}", json=body)).status_code in (200, 201, 204)
    for queue in ("notifier.job_request_events.dlq", "audit.job_request_events.dlq"):
        effective = await eventually(lambda q=queue: _effective_policy(api, vhost, q))
        assert effective["delivery-limit"] >= 1_000_000 and effective["queue-leader-locator"] == "balanced", queue
    work = await eventually(lambda: _effective_policy(api, vhost, "notifier.job_request_events"))
    assert "delivery-limit" not in work  # the work queues keep their own limit (x-delivery-limit)


async def _effective_policy(api: httpx.AsyncClient, vhost: str, queue: str) -> dict[str, Any] | None:
    found = (await api.get(f"/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}")).json()
    return found.get("effective_policy_definition") or None
