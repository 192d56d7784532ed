from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest

from notifier.app import create_app, topology
from notifier.settings import Settings
from service_runtime.mongo import connect_mongo
from tests.support.apps import delete_topology, parked, publish_event, running
from tests.support.events import cancelled_event
from tests.support.ids import unique
from tests.support.mailpit import Mailpit
from tests.support.servers import Servers
from tests.support.tokens import admin_headers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def notifier(
    servers: Servers, amqp: aio_pika.abc.AbstractRobustConnection
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = Settings(
        amqp_url=servers.amqp_url,
        mongodb_url=servers.mongodb_url,
        smtp_host=servers.smtp_host,
        smtp_port=servers.smtp_port,
        mongodb_database=unique("notifier_test").replace("-", "_"),
        queue=unique("notifier.test"),
        retry_delays_ms=(200, 400),
    )
    app = create_app(settings)
    async with running(app) as http:
        yield http, settings
    await delete_topology(amqp, topology(settings))


async def test_a_cancellation_emails_the_client_with_the_admin_in_cc_and_posts_a_notice(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any, mailpit: Mailpit
) -> None:
    http, settings = notifier
    event = cancelled_event()
    await publish_event(amqp, event.model_dump_json().encode(), routing_key=event.type, message_id=str(event.id))
    messages = await eventually(lambda: mailpit.messages_to(event.data.client.email))
    assert len(messages) == 1
    summary = messages[0]
    assert [a["Address"] for a in summary["Cc"]] == [event.data.business.admin_email]
    assert "Dog Walk 30 min" in summary["Subject"]
    whole = await mailpit.message(summary["ID"])
    assert str(event.id) in whole["MessageID"]
    assert "Thu 3 Dec 2026, 09:00" in whole["Text"] and "Rex" in whole["Text"]
    notices = await http.get(
        "/v1/admin/notices", params={"unread": "true"}, headers=admin_headers(event.data.business.id, settings)
    )
    body = notices.json()
    assert body["unread_count"] == 1
    assert body["notices"][0]["job_request_id"] == event.data.job_request_id
    assert "Ann Example" in body["notices"][0]["message"]


async def test_the_same_event_delivered_twice_sends_one_email_and_makes_one_notice(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any, mailpit: Mailpit
) -> None:
    http, settings = notifier
    event = cancelled_event()
    body = event.model_dump_json().encode()
    for _ in range(3):
        await publish_event(amqp, body, routing_key=event.type, message_id=str(event.id))
    await eventually(lambda: mailpit.messages_to(event.data.client.email))
    # A later event that arrives proves the duplicates before it were handled.
    marker = cancelled_event()
    await publish_event(amqp, marker.model_dump_json().encode(), routing_key=marker.type)
    await eventually(lambda: mailpit.messages_to(marker.data.client.email))
    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    notices = await http.get("/v1/admin/notices", headers=admin_headers(event.data.business.id, settings))
    assert len(notices.json()["notices"]) == 1


async def test_marking_a_notice_read_takes_it_off_the_unread_list_for_that_business_only(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any
) -> None:
    http, settings = notifier
    event = cancelled_event()
    await publish_event(amqp, event.model_dump_json().encode(), routing_key=event.type)
    admin = admin_headers(event.data.business.id, settings)

    async def notice_ids() -> list[str]:
        response = await http.get("/v1/admin/notices", params={"unread": "true"}, headers=admin)
        return [n["id"] for n in response.json()["notices"]]

    [notice_id] = await eventually(notice_ids)
    stranger = await http.post(
        f"/v1/admin/notices/{notice_id}/read", headers=admin_headers("another-business", settings)
    )
    assert stranger.status_code == 404 and stranger.json()["code"] == "notice_not_found"
    read = await http.post(f"/v1/admin/notices/{notice_id}/read", headers=admin)
    assert read.status_code == 200 and read.json()["read_at"]
    assert await notice_ids() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", "invalid_json"),
        (b'{"specversion": "1.0", "type": "job_request.cancelled"}', "invalid_envelope"),
        (b"SCHEMA", "invalid_schema"),
        (b"VERSION", "unknown_event"),
    ],
)
async def test_a_poison_message_is_parked_with_its_reason_and_the_next_message_still_flows(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any, mailpit: Mailpit, body: bytes, reason: str
) -> None:
    _, settings = notifier
    if body == b"SCHEMA":
        wire = cancelled_event().model_dump(mode="json", by_alias=True)
        del wire["data"]["client"]
        body = json.dumps(wire).encode()
    elif body == b"VERSION":
        wire = cancelled_event().model_dump(mode="json", by_alias=True)
        wire["dataschema"] = wire["dataschema"].replace("/v1", "/v9")
        body = json.dumps(wire).encode()
    await publish_event(amqp, body, routing_key="job_request.cancelled", message_id=unique("poison"))
    good = cancelled_event()
    await publish_event(amqp, good.model_dump_json().encode(), routing_key=good.type)
    await eventually(lambda: mailpit.messages_to(good.data.client.email))
    dead = await eventually(lambda: parked(amqp, topology(settings).dlq))
    headers = dead[0].headers or {}
    assert str(headers["x-dead-letter-reason"]).startswith(reason)
    assert dead[0].body == body


async def test_an_event_whose_email_cannot_be_written_is_parked_at_once_and_claims_nothing(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any, servers: Servers
) -> None:
    _, settings = notifier
    bad = cancelled_event(client={"id": unique("eve"), "name": "Eve\r\nBcc: x@evil.example", "email": "e@c.example"})
    await publish_event(amqp, bad.model_dump_json().encode(), routing_key=bad.type)
    dead = await eventually(lambda: parked(amqp, topology(settings).dlq))
    reason = str((dead[0].headers or {})["x-dead-letter-reason"])
    assert reason.startswith("permanent_error: cannot write the cancellation email"), reason
    db = connect_mongo(servers.mongodb_url, app_name="test")[settings.mongodb_database]
    try:
        assert await db["email_claims"].count_documents({"_id": {"$regex": str(bad.id)}}) == 0
        assert await db["notices"].count_documents({"event_id": str(bad.id)}) == 1  # the notice needs no email
    finally:
        await db.client.close()


async def test_a_twin_in_a_version_notifier_does_not_know_is_acknowledged_and_the_v1_twin_acts_once(
    notifier: tuple[httpx.AsyncClient, Settings], amqp: Any, mailpit: Mailpit
) -> None:
    # A breaking change published side by side: the same change (one id) as v1 and as v2, each naming both.
    _, settings = notifier
    event = cancelled_event()
    v1 = event.model_dump(mode="json", by_alias=True) | {"publishedversions": "1,2"}
    v2 = v1 | {"dataschema": v1["dataschema"].replace("/v1", "/v2"), "data": v1["data"] | {"in_v2": True}}
    twin = json.dumps(v2).encode()
    await publish_event(amqp, twin, routing_key=event.type, message_id=str(event.id))
    await publish_event(amqp, json.dumps(v1).encode(), routing_key=event.type, message_id=str(event.id))
    marker = cancelled_event()
    await publish_event(amqp, marker.model_dump_json().encode(), routing_key=marker.type)
    await eventually(lambda: mailpit.messages_to(marker.data.client.email))

    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    assert [m for m in await parked(amqp, topology(settings).dlq) if m.body == twin] == []
