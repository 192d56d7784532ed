"""SMTP and database faults, duplicates and contract evolution, against the real servers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from service_runtime.amqp import connect_amqp
from service_runtime.dlq import list_dead_letters
from tests.faults.conftest import FAST_RETRIES, FerretDbOverProxy, Stack
from tests.support.apps import publish_event
from tests.support.catalogue import Business, submit_and_cancel
from tests.support.effects import cancellation_event_ids
from tests.support.events import cancelled_event
from tests.support.mailpit import Mailpit
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


async def test_while_smtp_is_down_the_notice_and_log_happen_and_the_email_follows_once_smtp_is_back(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(servers.smtp_host, servers.smtp_port).start()
    try:
        proxy.cut()
        business = await stack.start_all(
            notifier={"smtp_host": "127.0.0.1", "smtp_port": proxy.port, "retry_delays_ms": (500, 1000, 2000, 4000)}
        )
        retried_before = await _metric_value(stack, "notifier", "messaging_retried_messages_total")
        request_id = await submit_and_cancel(stack.http["booking"], business)
        [event_id] = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])

        await eventually(lambda: _has(stack, mongo, mailpit, business.admin_email, "notices", event_id), timeout=10)
        await eventually(lambda: _has(stack, mongo, mailpit, business.admin_email, "logs", event_id), timeout=10)
        await eventually(
            lambda: _metric_above(stack, "notifier", "messaging_retried_messages_total", retried_before), timeout=10
        )
        effects = await stack.effects(mongo, mailpit, business.admin_email)
        assert effects.emails[event_id] == 0

        # Another message is not held up behind the failing one: it is retried on its own schedule.
        proxy.heal()
        await eventually(lambda: _has(stack, mongo, mailpit, business.admin_email, "emails", event_id), timeout=15)
        effects = await stack.effects(mongo, mailpit, business.admin_email)
        assert (effects.emails[event_id], effects.notices[event_id], effects.logs[event_id]) == (1, 1, 1)
    finally:
        await proxy.close()


async def test_after_its_last_attempt_an_email_is_dead_lettered_counted_and_replayable(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(servers.smtp_host, servers.smtp_port).start()
    try:
        proxy.cut()
        business = await stack.start_all(notifier={"smtp_host": "127.0.0.1", "smtp_port": proxy.port})
        dead_before = await _metric_value(stack, "notifier", "messaging_dead_lettered_messages_total")
        request_id = await submit_and_cancel(stack.http["booking"], business)
        [event_id] = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])
        topology = stack.apps["notifier"].state.topology
        connection = await connect_amqp(stack.vhost.amqp_url, name="test-dlq")
        try:
            parked = await eventually(lambda: list_dead_letters(connection, topology, limit=10), timeout=20)
            assert parked[0]["message_id"] == event_id
            assert parked[0]["reason"].startswith("retries_exhausted")
            assert parked[0]["attempts"] == len(FAST_RETRIES)
            assert await _metric_above(stack, "notifier", "messaging_dead_lettered_messages_total", dead_before)
            # The notice and the log entry did not wait for the email.
            effects = await stack.effects(mongo, mailpit, business.admin_email)
            assert (effects.emails[event_id], effects.notices[event_id], effects.logs[event_id]) == (0, 1, 1)

            # The operator's view: `notifier dlq list` prints the parked message, and leaves it parked.
            listed = await _cli(
                "notifier", "dlq", "list", env={"AMQP_URL": stack.vhost.amqp_url, "QUEUE": topology.queue}
            )
            assert [json.loads(line)["message_id"] for line in listed.splitlines()] == [event_id]

            proxy.heal()
            replayed = await _cli(
                "notifier", "dlq", "replay", env={"AMQP_URL": stack.vhost.amqp_url, "QUEUE": topology.queue}
            )
            assert json.loads(replayed) == {"replayed": 1}
            await eventually(lambda: _has(stack, mongo, mailpit, business.admin_email, "emails", event_id), timeout=15)
            assert await list_dead_letters(connection, topology, limit=10) == []
            effects = await stack.effects(mongo, mailpit, business.admin_email)
            assert (effects.emails[event_id], effects.notices[event_id]) == (1, 1)
        finally:
            await connection.close()
    finally:
        await proxy.close()


async def test_while_the_database_is_down_consumers_hold_on_report_not_ready_and_catch_up_after(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    from urllib.parse import urlsplit

    target = urlsplit(servers.mongodb_url)
    proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 27017).start()
    try:
        via_proxy = with_port(servers.mongodb_url, proxy.port)
        business = await stack.start_all(notifier={"mongodb_url": via_proxy}, audit={"mongodb_url": via_proxy})
        # In-process services share one metrics registry per test session: compare with the count before.
        dead_before = await _metric_value(stack, "notifier", "messaging_dead_lettered_messages_total")
        deferred_before = await _metric_value(stack, "audit", "messaging_deferred_messages_total")
        proxy.cut()
        request_ids = [await submit_and_cancel(stack.http["booking"], business, days_ahead=4 + i) for i in range(3)]
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", request_ids)
        for name in ("notifier", "audit"):
            await eventually(lambda n=name: _status(stack, n, 503), timeout=15)
        await eventually(
            lambda: _metric_above(stack, "audit", "messaging_deferred_messages_total", deferred_before), timeout=30
        )

        proxy.heal()
        for name in ("notifier", "audit"):
            await eventually(lambda n=name: _status(stack, n, 200), timeout=15)
        effects = await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=40)
        assert all(effects.emails[e] == effects.notices[e] == effects.logs[e] == 1 for e in event_ids)
        dead = await _metric_value(stack, "notifier", "messaging_dead_lettered_messages_total")
        assert dead == dead_before, "a database outage must not use up attempts and park messages"
    finally:
        await proxy.close()


async def test_while_postgresql_behind_ferretdb_is_down_nothing_is_parked_the_api_says_503_and_all_catch_up_after(
    ferretdb_over_proxy: FerretDbOverProxy, stack: Stack, mailpit: Mailpit
) -> None:
    # (The FerretDB first: it must outlive the services, which write on their way out.)
    # FerretDB itself answers, but every command fails (OperationFailure, code 1): not a ConnectionFailure, so
    # only a failing ping tells it from a bad write.
    url = ferretdb_over_proxy.mongodb_url
    on_it = {"mongodb_url": url}
    business = await stack.start_all(booking=on_it, notifier=on_it, audit=on_it)
    db = AsyncMongoClient[dict[str, Any]](url)
    try:
        booking = stack.http["booking"]
        submitted = await booking.post(
            "/v1/portal/job-requests",
            headers=business.client_headers(),
            json={
                "service_id": business.service_id,
                "date": _days_ahead(6),
                "start_time": "10:00",
                "pet_ids": [business.pet_id],
            },
        )
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["id"]
        before = {
            name: await _metric_value(stack, "notifier", f"messaging_{name}_messages_total")
            for name in ("retried", "dead_lettered", "deferred")
        }

        ferretdb_over_proxy.postgresql.cut()
        # An event reaches the consumers while the database is down: they wait with it, attempts kept.
        event = cancelled_event(
            client={"id": business.client_id, "name": "Ann", "email": business.client_email},
            business={"id": business.id, "name": "Happy Paws", "admin_email": business.admin_email, "timezone": "UTC"},
        )
        connection = await connect_amqp(stack.vhost.amqp_url, name="test-publisher")
        try:
            await publish_event(connection, event.model_dump_json().encode(), routing_key=event.type)
        finally:
            await connection.close()
        cancel = f"/v1/portal/job-requests/{request_id}/cancel"
        refused = await booking.post(cancel, headers=business.client_headers())
        assert (refused.status_code, refused.json()["code"]) == (503, "unavailable"), refused.text
        await eventually(
            lambda: _metric_above(stack, "notifier", "messaging_deferred_messages_total", before["deferred"] + 1),
            timeout=20,
        )

        during = {
            name: await _metric_value(stack, "notifier", f"messaging_{name}_messages_total")
            for name in ("retried", "dead_lettered")
        }
        assert during == {"retried": before["retried"], "dead_lettered": before["dead_lettered"]}

        ferretdb_over_proxy.postgresql.heal()
        cancelled = await eventually(lambda: _answers(booking, cancel, business, 200), timeout=20)
        assert cancelled.json()["status"] == "cancelled"
        [cancel_event] = await cancellation_event_ids(db, f"booking_{stack.run}", [request_id])
        expected = {str(event.id), cancel_event}
        effects = await eventually(lambda: stack.complete(db, mailpit, business.admin_email, expected), timeout=40)
        assert all(effects.emails[e] == effects.notices[e] == effects.logs[e] == 1 for e in expected), effects
        dead = await _metric_value(stack, "notifier", "messaging_dead_lettered_messages_total")
        assert dead == before["dead_lettered"], "nothing may be parked for an outage"
    finally:
        await db.close()


def _days_ahead(days: int) -> str:
    from datetime import date, timedelta

    return (date.today() + timedelta(days=days)).isoformat()


async def _answers(http: Any, path: str, business: Business, status: int) -> Any:
    response = await http.post(path, headers=business.client_headers())
    return response if response.status_code == status else None


async def test_the_same_event_published_many_times_at_once_has_one_effect_each(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    business = await stack.start_all()
    event = _cancellation_for(business)
    body = event.model_dump_json().encode()
    connection = await connect_amqp(stack.vhost.amqp_url, name="test-dupes")
    try:
        await asyncio.gather(
            *(publish_event(connection, body, routing_key=event.type, message_id=str(event.id)) for _ in range(8))
        )
        marker = cancelled_event(business=event.data.business)
        await publish_event(connection, marker.model_dump_json().encode(), routing_key=marker.type)
        await eventually(
            lambda: stack.complete(mongo, mailpit, business.admin_email, {str(event.id), str(marker.id)}), timeout=20
        )
        # Let any duplicate still in a retry wait queue (a concurrent claim answers "busy") come back and settle.
        await eventually(lambda: _queues_empty(stack), timeout=20)
        effects = await stack.effects(mongo, mailpit, business.admin_email)
        assert (effects.emails[str(event.id)], effects.notices[str(event.id)], effects.logs[str(event.id)]) == (1, 1, 1)
    finally:
        await connection.close()


async def test_a_v1_consumer_accepts_an_event_with_extra_unknown_fields(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    business = await stack.start_all()
    event = _cancellation_for(business)
    wire = event.model_dump(mode="json", by_alias=True)
    wire["newattribute"] = "from a later producer"
    wire["data"]["loyalty_points"] = 12
    wire["data"]["client"]["phone"] = "+44 20 0000 0000"
    connection = await connect_amqp(stack.vhost.amqp_url, name="test-evolution")
    try:
        await publish_event(connection, json.dumps(wire).encode(), routing_key=event.type, message_id=str(event.id))
        await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, {str(event.id)}), timeout=20)
    finally:
        await connection.close()


async def test_every_service_exposes_the_pipeline_metrics(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit
) -> None:
    business = await stack.start_all()
    request_id = await submit_and_cancel(stack.http["booking"], business)
    event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", [request_id])
    await eventually(lambda: stack.complete(mongo, mailpit, business.admin_email, event_ids), timeout=20)
    booking = (await stack.http["booking"].get("/metrics")).text
    for name in (
        "http_requests_total",
        "http_request_duration_seconds",
        "outbox_published_events_total",
        "outbox_backlog_events",
        "outbox_backlog_oldest_age_seconds",
    ):
        assert name in booking, name
    for service in ("notifier", "audit"):
        text = (await stack.http[service].get("/metrics")).text
        for name in (
            "messaging_client_consumed_messages_total",
            "messaging_process_duration_seconds",
            "messaging_retried_messages_total",
            "messaging_dead_lettered_messages_total",
            "http_requests_total",
        ):
            assert name in text, f"{service}: {name}"
    assert await _metric_above(stack, "booking", 'outbox_published_events_total{event_type="job_request.cancelled"}', 0)


async def _has(stack: Stack, mongo: Any, mailpit: Mailpit, admin_email: str, kind: str, event_id: str) -> bool:
    return bool(getattr(await stack.effects(mongo, mailpit, admin_email), kind)[event_id] >= 1)


async def _status(stack: Stack, service: str, status: int) -> bool:
    return bool((await stack.http[service].get("/readyz")).status_code == status)


async def _metric_value(stack: Stack, service: str, name: str) -> float:
    text = (await stack.http[service].get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def _metric_above(stack: Stack, service: str, name: str, value: float) -> bool:
    return await _metric_value(stack, service, name) > value


async def _queues_empty(stack: Stack) -> bool:
    for service in ("notifier", "audit"):
        topology = stack.apps[service].state.topology
        for queue in [topology.queue, *(topology.retry_queue(i + 1) for i in range(len(topology.retry_delays_ms)))]:
            response = await stack.vhost.management.get(f"/api/queues/{stack.vhost.name}/{queue}")
            if response.status_code == 200 and response.json().get("messages", 0) != 0:
                return False
    return True


async def _cli(*args: str, env: dict[str, str]) -> str:
    """Run a service's command line as an operator would, and return what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def _cancellation_for(business: Business) -> Any:
    """A valid cancellation event of the stack's business (so that its admin inbox is the one counted)."""
    return cancelled_event(
        business={
            "id": business.id,
            "name": "Happy Paws",
            "admin_email": business.admin_email,
            "timezone": "Europe/London",
        }
    )
