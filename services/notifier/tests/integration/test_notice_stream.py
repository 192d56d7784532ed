"""The live HOME feed over a real socket: notifier under uvicorn, read with httpx-sse, notices in the real database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse
from pymongo import AsyncMongoClient

from notifier.app import create_app, topology
from notifier.settings import Settings
from service_runtime.auth import Principal, TokenCodec
from tests.support.apps import delete_topology
from tests.support.ids import unique
from tests.support.processes import free_port
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PAGES = "http://pages.example:8001"


@pytest.fixture(scope="module")
async def notifier(servers: Servers, amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[Settings]:
    settings = Settings(
        amqp_url=servers.amqp_url,
        mongodb_url=servers.mongodb_url,
        smtp_host=servers.smtp_host,
        smtp_port=servers.smtp_port,
        mongodb_database=unique("notifier_stream").replace("-", "_"),
        queue=unique("notifier.stream"),
        http_port=free_port(),
        cors_origins=(PAGES,),
        notice_stream_poll_seconds=0.1,
        notice_stream_lookback_seconds=5,
        notice_stream_seconds=2,
        notice_stream_batch=10,
        notice_streams_per_business=3,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.http_port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=20)
    yield settings
    server.should_exit = True
    await task
    await delete_topology(amqp, topology(settings))


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.http_port}/v1/admin/notices/stream"


def admin(settings: Settings, business_id: str) -> dict[str, str]:
    token = TokenCodec(settings.auth_secret.get_secret_value()).issue(Principal("admin", "boss", business_id))
    return {"Authorization": f"Bearer {token}"}


async def add_notice(
    mongo: AsyncMongoClient[dict[str, Any]], settings: Settings, business_id: str, *, created_at: datetime
) -> str:
    event_id = str(uuid.uuid4())
    notice_id = str(uuid.uuid4())
    now = created_at.replace(microsecond=created_at.microsecond // 1000 * 1000)
    await mongo[settings.mongodb_database]["notices"].insert_one(
        {
            "_id": notice_id,
            "event_id": event_id,
            "dedupe_key": f"test:{event_id}",
            "business_id": business_id,
            "kind": "job_request.cancelled",
            "title": "Ann Example cancelled a job request",
            "message": "Ann Example cancelled the job request.",
            "job_request_id": unique("jr"),
            "client": {"id": "ann", "name": "Ann Example"},
            "service": "Dog Walk 30 min",
            "requested_date": "2026-12-03",
            "requested_start_time": "09:00",
            "cancelled_at": now,
            "cancelled_by": {"kind": "client", "id": "ann"},
            "reason": None,
            "timezone": "Europe/London",
            "created_at": now,
            "read_at": None,
        }
    )
    return notice_id


async def notices_until(
    http: httpx.AsyncClient, settings: Settings, business_id: str, wanted: set[str], last_event_id: str | None = None
) -> list[ServerSentEvent]:
    """Read one stream until every wanted notice came (or the stream ended); return the notice events."""
    headers = admin(settings, business_id) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    got: list[ServerSentEvent] = []
    async with aconnect_sse(http, "GET", url(settings), headers=headers) as source:
        source.response.raise_for_status()
        async for event in source.aiter_sse():
            if event.event == "notice":
                got.append(event)
            if wanted <= {e.id for e in got}:
                break
    return got


async def test_a_new_notice_comes_as_an_event_whose_id_is_the_notice_id(
    notifier: Settings, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    business = unique("biz")
    async with httpx.AsyncClient(timeout=10) as http:
        reading = asyncio.create_task(notices_until(http, notifier, business, {"?"}))
        # Written while the stream opens or after: either way it comes (the stream replays its lookback window).
        notice_id = await add_notice(mongo, notifier, business, created_at=datetime.now(UTC))
        events = await reading  # the stream ends after NOTICE_STREAM_SECONDS
    assert [e.id for e in events] == [notice_id]
    assert events[0].json()["id"] == notice_id and events[0].json()["client"]["name"] == "Ann Example"


async def test_a_reconnect_with_last_event_id_gets_what_was_missed_and_not_what_it_had(
    notifier: Settings, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    business = unique("biz")
    first = await add_notice(mongo, notifier, business, created_at=datetime.now(UTC))
    async with httpx.AsyncClient(timeout=10) as http:
        seen = await notices_until(http, notifier, business, {first})
        assert [e.id for e in seen] == [first]
        missed = await add_notice(mongo, notifier, business, created_at=datetime.now(UTC))
        resumed = await notices_until(http, notifier, business, {missed}, last_event_id=first)
    assert [e.id for e in resumed] == [missed]


async def test_a_notice_stamped_earlier_but_visible_later_is_still_sent_once(
    notifier: Settings, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    business = unique("biz")
    newer = await add_notice(mongo, notifier, business, created_at=datetime.now(UTC))
    async with httpx.AsyncClient(timeout=10) as http:
        headers = admin(notifier, business)
        got: list[str] = []
        async with aconnect_sse(http, "GET", url(notifier), headers=headers) as source:
            async for event in source.aiter_sse():
                if event.event != "notice":
                    continue
                got.append(event.id)
                if event.id == newer:
                    # Another replica's notice, stamped 2 s before the one just sent, becomes visible only now.
                    await add_notice(mongo, notifier, business, created_at=datetime.now(UTC) - timedelta(seconds=2))
    assert len(got) == 2 and got[0] == newer and len(set(got)) == 2


async def test_the_stream_shows_only_the_admins_business_and_needs_a_token(
    notifier: Settings, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    mine, theirs = unique("biz"), unique("biz")
    await add_notice(mongo, notifier, theirs, created_at=datetime.now(UTC))
    own = await add_notice(mongo, notifier, mine, created_at=datetime.now(UTC))
    async with httpx.AsyncClient(timeout=10) as http:
        events = await notices_until(http, notifier, mine, {"never"})
        assert [e.id for e in events] == [own]
        refused = await http.get(url(notifier))
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


async def test_cors_lets_only_the_configured_page_origin_call_with_a_token(notifier: Settings) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    async with httpx.AsyncClient(timeout=10) as http:
        allowed = await http.options(url(notifier), headers={"Origin": PAGES, **preflight})
        other = await http.options(url(notifier), headers={"Origin": "http://evil.example", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == PAGES
    assert "access-control-allow-origin" not in other.headers


async def test_a_burst_bigger_than_one_read_reaches_the_feed_whole(
    notifier: Settings, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    business = unique("biz")
    now = datetime.now(UTC)
    # 25 notices within the lookback window, reads of 10: the feed must page past its first read.
    burst = {await add_notice(mongo, notifier, business, created_at=now - timedelta(milliseconds=i)) for i in range(25)}
    async with httpx.AsyncClient(timeout=10) as http:
        events = await notices_until(http, notifier, business, burst)
    assert {e.id for e in events} == burst and len(events) == 25


async def test_a_business_over_its_live_feed_limit_gets_429_until_one_is_closed_or_ends(notifier: Settings) -> None:
    business = unique("biz")
    headers = admin(notifier, business)
    async with httpx.AsyncClient(timeout=10) as http:
        async with contextlib.AsyncExitStack() as open_feeds:
            for _ in range(3):
                source = await open_feeds.enter_async_context(aconnect_sse(http, "GET", url(notifier), headers=headers))
                assert source.response.status_code == 200
            refused = await http.get(url(notifier), headers=headers)
            assert refused.status_code == 429 and refused.json()["code"] == "too_many_streams", refused.text
            other = await http.get(url(notifier), headers=admin(notifier, unique("biz")))  # another business
            assert other.status_code == 200
        again = await eventually(lambda: _status(http, url(notifier), headers))
    assert again == 200


async def _status(http: httpx.AsyncClient, address: str, headers: dict[str, str]) -> int | None:
    async with http.stream("GET", address, headers=headers) as response:
        return response.status_code if response.status_code == 200 else None
