from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest

from audit.app import create_app, topology
from audit.settings import Settings
from tests.support.apps import delete_topology, publish_event, running
from tests.support.events import cancelled_event
from tests.support.ids import unique
from tests.support.servers import Servers
from tests.support.tokens import admin_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def audit(
    servers: Servers, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = Settings(
        amqp_url=servers.amqp_url,
        mongodb_url=servers.mongodb_url,
        mongodb_database=unique("audit_test").replace("-", "_"),
        queue=unique("audit.test"),
        retry_delays_ms=(200, 400),
    )
    async with running(create_app(settings)) as http:
        yield http, settings
    await delete_topology(amqp, topology(settings))


async def test_a_cancellation_writes_one_timestamped_entry_in_the_clients_logs(
    audit: tuple[httpx.AsyncClient, Settings], amqp: Any
) -> None:
    http, settings = audit
    event = cancelled_event()
    for _ in range(2):  # delivered twice: still one entry
        await publish_event(amqp, event.model_dump_json().encode(), routing_key=event.type, message_id=str(event.id))
    url = f"/v1/admin/clients/{event.data.client.id}/logs"
    headers = admin_headers(event.data.business.id, settings)

    async def entries() -> list[dict[str, Any]]:
        return list((await http.get(url, headers=headers)).json())

    [entry] = await eventually(entries)
    marker = cancelled_event(client=event.data.client, business=event.data.business)
    await publish_event(amqp, marker.model_dump_json().encode(), routing_key=marker.type)
    logged = await eventually(lambda: _two(entries))
    assert [e["id"] for e in logged].count(str(event.id)) == 1
    assert entry["occurred_at"].startswith("2026-11-25T16:20:05.123")
    assert entry["summary"] == "Job request cancelled by client: Dog Walk 30 min on Thu 3 Dec 2026, 09:00"
    assert entry["actor"] == {"kind": "client", "id": event.data.client.id}


async def test_another_business_admin_sees_no_entries(audit: tuple[httpx.AsyncClient, Settings], amqp: Any) -> None:
    http, settings = audit
    event = cancelled_event()
    await publish_event(amqp, event.model_dump_json().encode(), routing_key=event.type)
    url = f"/v1/admin/clients/{event.data.client.id}/logs"
    await eventually(lambda: _non_empty(http.get(url, headers=admin_headers(event.data.business.id, settings))))
    other = await http.get(url, headers=admin_headers("another-business", settings))
    assert other.status_code == 200 and other.json() == []


async def _two(entries: Any) -> list[dict[str, Any]] | None:
    found = await entries()
    return found if len(found) >= 2 else None


async def _non_empty(request: Any) -> bool:
    return bool((await request).json())


async def test_an_admin_pages_back_through_a_long_log_to_its_oldest_entry(
    audit: tuple[httpx.AsyncClient, Settings], mongo: Any
) -> None:
    http, settings = audit
    business, client = unique("biz"), unique("client")
    # 25 entries, some sharing an instant (the page order breaks ties by id), written as audit writes them.
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    entries = [
        {
            "_id": f"e{i:03d}",
            "dedupe_key": f"test:{i}",
            "business_id": business,
            "client_id": client,
            "type": "job_request.submitted",
            "occurred_at": base + timedelta(minutes=i // 3),
            "timezone": "Europe/London",
            "actor": {"kind": "client", "id": client},
            "job_request_id": f"jr{i}",
            "summary": f"entry {i}",
            "correlation_id": "",
            "logged_at": base,
        }
        for i in range(25)
    ]
    await mongo[settings.mongodb_database]["client_log_entries"].insert_many(entries)
    url, headers = f"/v1/admin/clients/{client}/logs", admin_headers(business, settings)

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        page = (await http.get(url, headers=headers, params=params)).json()
        seen += [e["id"] for e in page]
        if len(page) < 10:
            break
        params = {"limit": 10, "before": page[-1]["occurred_at"], "before_id": page[-1]["id"]}
    assert seen == sorted((e["_id"] for e in entries), reverse=True)  # newest first, each once, down to the oldest

    refused = await http.get(url, headers=headers, params={"before_id": "e001"})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_reference"
    for instant in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-01:00"):  # no such instant in UTC
        out_of_range = await http.get(url, headers=headers, params={"before": instant})
        assert out_of_range.status_code == 422 and out_of_range.json()["code"] == "invalid_request", instant
