"""Booking in-process against the real servers, with its own database and a probe queue on the exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import orjson
import pytest

from booking.app import create_app
from booking.events import EventStream
from booking.settings import Settings
from booking.store import JobRequests
from booking_contracts import EXCHANGE
from service_runtime.auth import Principal, TokenCodec
from tests.support.apps import running
from tests.support.ids import unique
from tests.support.servers import Servers


@dataclass
class Portal:
    """One business with two clients, and HTTP clients holding their tokens."""

    http: httpx.AsyncClient
    tokens: TokenCodec
    business_id: str
    ann: str
    ben: str
    service_id: str
    ann_pet: str
    ben_pet: str
    projection: JobRequests
    stream: EventStream
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)

    def auth(self, role: str, subject: str, business_id: str | None = None) -> dict[str, str]:
        token = self.tokens.issue(Principal(role, subject, business_id or self.business_id))  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    def client(self, who: str) -> dict[str, str]:
        return self.auth("client", who)

    def admin(self) -> dict[str, str]:
        return self.auth("admin", "boss")

    def events_of(self, job_request_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.events if e["subject"] == job_request_id and (event_type is None or e["type"] == event_type)
        ]


@pytest.fixture(scope="session")
async def booking_portal(servers: Servers, amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[Portal]:
    settings = Settings(
        amqp_url=servers.amqp_url,
        mongodb_url=servers.mongodb_url,
        mongodb_database=unique("booking_test").replace("-", "_"),
        relay_sweep_seconds=0.5,
    )
    app = create_app(settings)
    channel = await amqp.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    probe = await channel.declare_queue(exclusive=True, auto_delete=True)
    await probe.bind(exchange, "job_request.#")
    async with running(app) as http:
        deps = app.state.deps
        portal = Portal(
            http=http,
            tokens=app.state.tokens,
            business_id=unique("biz"),
            ann=unique("ann"),
            ben=unique("ben"),
            service_id=unique("walk"),
            ann_pet=unique("rex"),
            ben_pet=unique("bo"),
            projection=deps.projection,
            stream=deps.stream,
        )
        await deps.catalogue.upsert(
            "businesses",
            {
                "_id": portal.business_id,
                "name": "Happy Paws",
                "admin_email": f"{portal.business_id}@paws.example",
                "timezone": "Europe/London",
            },
        )
        for client_id, name in ((portal.ann, "Ann"), (portal.ben, "Ben")):
            await deps.catalogue.upsert(
                "clients",
                {"_id": client_id, "business_id": portal.business_id, "name": name, "email": f"{client_id}@c.example"},
            )
        for pet_id, owner in ((portal.ann_pet, portal.ann), (portal.ben_pet, portal.ben)):
            await deps.catalogue.upsert(
                "pets",
                {"_id": pet_id, "client_id": owner, "business_id": portal.business_id, "name": "Rex", "species": "dog"},
            )
        await deps.catalogue.upsert(
            "services",
            {
                "_id": portal.service_id,
                "business_id": portal.business_id,
                "name": "Dog Walk 30 min",
                "duration_minutes": 30,
            },
        )

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                portal.messages.append(message)
                portal.events.append(orjson.loads(message.body))

        tag = await probe.consume(collect)
        yield portal
        await probe.cancel(tag)
    await channel.close()
    await asyncio.sleep(0)
