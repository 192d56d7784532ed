"""Booking's API while its database is unreachable: a clear 503 to retry, and nothing half-written after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from booking.app import create_app
from booking.settings import Settings
from service_runtime.mongo import connect_mongo
from tests.support.apps import running
from tests.support.catalogue import Business, seed_business
from tests.support.ids import unique
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
async def booking_behind_proxy(servers: Servers) -> AsyncIterator[tuple[httpx.AsyncClient, Business, FaultProxy]]:
    target = urlsplit(servers.mongodb_url)
    proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 27017).start()
    settings = Settings(
        amqp_url=servers.amqp_url,
        mongodb_url=with_port(servers.mongodb_url, proxy.port),
        mongodb_database=unique("booking_dbfault").replace("-", "_"),
        relay_sweep_seconds=0.5,
    )
    app = create_app(settings)
    try:
        async with running(app) as http:
            business = await seed_business(app.state.deps, app.state.tokens)
            yield http, business, proxy
            proxy.heal()
    finally:
        await proxy.close()
        direct = connect_mongo(servers.mongodb_url, app_name="test")
        await direct.drop_database(settings.mongodb_database)
        await direct.close()


async def test_while_the_database_is_unreachable_a_cancel_answers_503_to_retry_and_then_succeeds(
    booking_behind_proxy: tuple[httpx.AsyncClient, Business, FaultProxy],
) -> None:
    http, business, proxy = booking_behind_proxy
    body: dict[str, Any] = {
        "service_id": business.service_id,
        "date": "2099-01-05",
        "start_time": "09:00",
        "pet_ids": [business.pet_id],
    }
    submitted = await http.post("/v1/portal/job-requests", headers=business.client_headers(), json=body)
    assert submitted.status_code == 201, submitted.text
    cancel = f"/v1/portal/job-requests/{submitted.json()['id']}/cancel"

    proxy.cut()
    refused = await http.post(cancel, headers=business.client_headers())
    assert refused.status_code == 503 and refused.json()["code"] == "unavailable", refused.text
    assert refused.headers["Retry-After"] == "2"

    proxy.heal()
    cancelled = await http.post(cancel, headers=business.client_headers())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
