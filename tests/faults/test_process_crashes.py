"""Crashes of whole service processes (SIGKILL) in the middle of their work: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from audit.app import create_app as create_audit
from booking.app import create_app as create_booking
from booking.store import Catalogue
from notifier.app import create_app as create_notifier
from service_runtime.auth import TokenCodec
from tests.faults.conftest import Stack
from tests.support.catalogue import Business, seed_business, submit_and_cancel
from tests.support.effects import cancellation_event_ids
from tests.support.mailpit import Mailpit
from tests.support.processes import ServiceProcess
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

SECRET = "faults-secret-" + "x" * 32


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def env_of(stack: Stack, service: str, **extra: str) -> dict[str, str]:
    return {
        **stack.servers.service_env(amqp_url=stack.vhost.amqp_url),
        "MONGODB_DATABASE": f"{service}_{stack.run}",
        "AUTH_SECRET": SECRET,
        "RETRY_DELAYS_MS": "[300, 600, 1200, 2400]",
        "EMAIL_CLAIM_LEASE_SECONDS": "2",
        "AMQP_HEARTBEAT_SECONDS": "2",
        "RELAY_SWEEP_SECONDS": "0.5",
        "RELAY_SWEEP_LEASE_SECONDS": "2",  # a killed booking's sweep slot passes on within 2 s
        **extra,
    }


async def test_booking_killed_after_storing_a_cancel_and_before_the_confirm_loses_nothing(
    stack: Stack, servers: Servers, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit, logs: Path
) -> None:
    from urllib.parse import urlsplit

    await stack.start("notifier", create_notifier(stack.notifier_settings()))
    await stack.start("audit", create_audit(stack.audit_settings()))
    target = urlsplit(servers.amqp_url)
    proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 5672).start()
    booking = ServiceProcess(
        "booking", env_of(stack, "booking", AMQP_URL=with_port(stack.vhost.amqp_url, proxy.port)), logs / "booking.log"
    )
    try:
        await booking.start_async()
        business = await seed_business(
            SimpleNamespace(catalogue=Catalogue(mongo[f"booking_{stack.run}"])),  # type: ignore[arg-type]
            TokenCodec(SECRET),
        )
        async with httpx.AsyncClient(base_url=booking.url, timeout=10) as http:
            submitted = [await submit_and_cancel(http, business, days_ahead=3)]
            await eventually(lambda: _effects_complete(stack, mongo, mailpit, business, submitted), timeout=20)
            proxy.stall()  # from now on nothing booking publishes is confirmed
            request_ids = [await submit_and_cancel(http, business, days_ahead=4 + i) for i in range(3)]
        events = mongo[f"booking_{stack.run}"]["job_request_events"]
        assert await events.count_documents({"stream_id": {"$in": request_ids}, "published_at": None}) == 6
        booking.stop(signal.SIGKILL)  # stored, not confirmed: the crash window

        proxy.reset()
        await booking.start_async()  # a new process finds the pending events and publishes them
        effects = await eventually(lambda: _effects_complete(stack, mongo, mailpit, business, request_ids), timeout=30)
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", request_ids)
        assert all(effects.emails[e] == effects.notices[e] == effects.logs[e] == 1 for e in event_ids)
    finally:
        booking.stop(signal.SIGKILL)
        await proxy.close()


async def test_consumers_killed_mid_batch_of_200_cancellations_leave_every_effect_once(
    stack: Stack, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit, logs: Path
) -> None:
    notifier = ServiceProcess(
        "notifier", env_of(stack, "notifier", QUEUE=f"notifier.{stack.run}"), logs / "notifier.log"
    )
    audit = ServiceProcess("audit", env_of(stack, "audit", QUEUE=f"audit.{stack.run}"), logs / "audit.log")
    try:
        await notifier.start_async()
        await audit.start_async()
        await stack.start("booking", create_booking(stack.booking_settings()))
        business = await stack.seed()
        http = stack.http["booking"]
        request_ids: list[str] = []

        async def client(n: int) -> None:
            for i in range(20):
                request_ids.append(await submit_and_cancel(http, business, days_ahead=2 + (n * 20 + i) % 300))

        async def kill_mid_batch() -> None:
            # Both consumers die while cancellations still pour in and they hold unacked messages.
            await eventually(lambda: _some_emails(stack, mongo, mailpit, business, 10), timeout=60, interval=0.01)
            for proc in (notifier, audit):
                assert proc.process is not None
                os.kill(proc.process.pid, signal.SIGKILL)
                proc.process.wait()

        killer = asyncio.create_task(kill_mid_batch())
        await asyncio.gather(*(client(n) for n in range(10)))
        await killer
        event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", request_ids)
        assert len(event_ids) == 200
        partial = await stack.effects(mongo, mailpit, business.admin_email)
        assert len(partial.emails) < 200, "the kill came too late to test anything"

        await notifier.start_async()
        await audit.start_async()
        effects = await eventually(lambda: _effects_complete(stack, mongo, mailpit, business, request_ids), timeout=120)
        await asyncio.sleep(0)  # effects complete: now count duplicates
        assert all(effects.notices[e] == 1 for e in event_ids), "a notice was doubled"
        assert all(effects.logs[e] == 1 for e in event_ids), "a log entry was doubled"
        doubled = {e: n for e, n in effects.emails.items() if n > 1}
        # The one window no protocol closes: killed after the SMTP server's 250 and before the sent-record.
        # Only sends in flight at the kill can fall in it (at most one per SMTP connection), each resent
        # with the same Message-ID.
        assert len(doubled) <= 4 and all(n == 2 for n in doubled.values()), doubled
    finally:
        notifier.stop(signal.SIGKILL)
        audit.stop(signal.SIGKILL)


async def test_racing_cancels_and_schedules_of_100_requests_never_both_win(stack: Stack) -> None:
    business = await stack.start_all()
    http = stack.http["booking"]
    from datetime import date, timedelta

    ids = []
    for i in range(100):
        response = await http.post(
            "/v1/portal/job-requests",
            headers=business.client_headers(),
            json={
                "service_id": business.service_id,
                "date": (date.today() + timedelta(days=1 + i % 60)).isoformat(),
                "start_time": "09:00",
                "pet_ids": [business.pet_id],
            },
        )
        ids.append(response.json()["id"])

    async def race(request_id: str) -> tuple[int, int]:
        cancel, schedule = await asyncio.gather(
            http.post(f"/v1/portal/job-requests/{request_id}/cancel", headers=business.client_headers()),
            http.post(f"/v1/admin/job-requests/{request_id}/schedule", headers=business.admin_headers()),
        )
        return cancel.status_code, schedule.status_code

    results = await asyncio.gather(*(race(i) for i in ids))
    assert all(sorted(r) == [200, 409] for r in results), results
    events = stack.apps["booking"].state.deps.stream
    for request_id, (cancel, _) in zip(ids, results, strict=True):
        latest = await events.latest(request_id)
        assert latest is not None and latest.version == 2
        assert latest.status.value == ("cancelled" if cancel == 200 else "scheduled")


async def _some_emails(stack: Stack, mongo: Any, mailpit: Mailpit, business: Business, at_least: int) -> bool:
    return len((await stack.effects(mongo, mailpit, business.admin_email)).emails) >= at_least


async def _effects_complete(
    stack: Stack, mongo: Any, mailpit: Mailpit, business: Business, request_ids: list[str]
) -> Any:
    event_ids = await cancellation_event_ids(mongo, f"booking_{stack.run}", request_ids)
    effects = await stack.effects(mongo, mailpit, business.admin_email)
    return effects if len(event_ids) == len(request_ids) and effects.complete(event_ids) else None
