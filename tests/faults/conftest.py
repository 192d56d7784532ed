"""Fault tests: each gets its own RabbitMQ virtual host and databases, so breaking things disturbs no other test."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from audit.app import create_app as create_audit
from audit.settings import Settings as AuditSettings
from booking.app import create_app as create_booking
from booking.settings import Settings as BookingSettings
from notifier.app import create_app as create_notifier
from notifier.settings import Settings as NotifierSettings
from tests.support.apps import running
from tests.support.catalogue import Business, seed_business
from tests.support.effects import Effects, count_effects
from tests.support.ids import unique
from tests.support.mailpit import Mailpit
from tests.support.processes import free_port, listening
from tests.support.proxy import FaultProxy
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost

FAST_RETRIES = (300, 600, 1200)


@dataclass
class Vhost:
    """A RabbitMQ virtual host of the test's own."""

    name: str
    amqp_url: str
    management: httpx.AsyncClient

    async def consumers(self, queue: str) -> int:
        response = await self.management.get(f"/api/queues/{quote(self.name, safe='')}/{quote(queue, safe='')}")
        return int(response.json().get("consumers", 0)) if response.status_code == 200 else -1

    async def queue_exists(self, queue: str) -> bool:
        response = await self.management.get(f"/api/queues/{quote(self.name, safe='')}/{quote(queue, safe='')}")
        return response.status_code == 200

    async def delete_queue(self, queue: str) -> None:
        response = await self.management.delete(f"/api/queues/{quote(self.name, safe='')}/{quote(queue, safe='')}")
        assert response.status_code in (200, 204), response.text


@pytest.fixture
async def vhost(servers: Servers) -> AsyncIterator[Vhost]:
    with own_vhost(servers, "faults") as (name, amqp_url):
        async with httpx.AsyncClient(
            base_url=servers.rabbitmq_management_url, auth=("guest", "guest"), timeout=10
        ) as api:
            yield Vhost(name=name, amqp_url=amqp_url, management=api)


@dataclass
class Stack:
    """The three services in-process, each with its own settings; start them with `start`."""

    servers: Servers
    vhost: Vhost
    run: str = field(default_factory=lambda: unique("f").replace("-", "_"))
    exits: AsyncExitStack = field(default_factory=AsyncExitStack)
    http: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    apps: dict[str, FastAPI] = field(default_factory=dict)

    def booking_settings(self, **overrides: Any) -> BookingSettings:
        values: dict[str, Any] = {
            "amqp_url": self.vhost.amqp_url,
            "mongodb_url": self.servers.mongodb_url,
            "mongodb_database": f"booking_{self.run}",
            "relay_sweep_seconds": 0.5,
            "relay_sweep_lease_seconds": 2,  # a killed booking's sweep slot passes on within 2 s
            "amqp_heartbeat_seconds": 2,
            **overrides,
        }
        return BookingSettings(**values)

    def notifier_settings(self, **overrides: Any) -> NotifierSettings:
        values: dict[str, Any] = {
            "amqp_url": self.vhost.amqp_url,
            "mongodb_url": self.servers.mongodb_url,
            "smtp_host": self.servers.smtp_host,
            "smtp_port": self.servers.smtp_port,
            "mongodb_database": f"notifier_{self.run}",
            "retry_delays_ms": FAST_RETRIES,
            "amqp_heartbeat_seconds": 2,
            "email_claim_lease_seconds": 3,
            **overrides,
        }
        return NotifierSettings(**values)

    def audit_settings(self, **overrides: Any) -> AuditSettings:
        values: dict[str, Any] = {
            "amqp_url": self.vhost.amqp_url,
            "mongodb_url": self.servers.mongodb_url,
            "mongodb_database": f"audit_{self.run}",
            "retry_delays_ms": FAST_RETRIES,
            "amqp_heartbeat_seconds": 2,
            **overrides,
        }
        return AuditSettings(**values)

    async def start(self, name: str, app: FastAPI) -> httpx.AsyncClient:
        self.apps[name] = app
        self.http[name] = await self.exits.enter_async_context(running(app))
        return self.http[name]

    async def start_all(
        self,
        *,
        booking: dict[str, Any] | None = None,
        notifier: dict[str, Any] | None = None,
        audit: dict[str, Any] | None = None,
    ) -> Business:
        """Consumers first (their queues must exist before booking publishes), then booking; seed a business."""
        await self.start("notifier", create_notifier(self.notifier_settings(**(notifier or {}))))
        await self.start("audit", create_audit(self.audit_settings(**(audit or {}))))
        await self.start("booking", create_booking(self.booking_settings(**(booking or {}))))
        return await self.seed()

    async def effects(self, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit, admin_email: str) -> Effects:
        """What the cancellations of one business caused so far, in this stack's databases and the SMTP server."""
        return await count_effects(
            mongo, mailpit, admin_email=admin_email, notifier_db=f"notifier_{self.run}", audit_db=f"audit_{self.run}"
        )

    async def complete(
        self, mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit, admin_email: str, event_ids: set[str]
    ) -> Effects | None:
        """The effects once every event has all three (for `eventually`), else None."""
        effects = await self.effects(mongo, mailpit, admin_email)
        return effects if effects.complete(event_ids) else None

    async def seed(self) -> Business:
        app = self.apps["booking"]
        return await seed_business(app.state.deps, app.state.tokens)


@pytest.fixture
async def stack(servers: Servers, vhost: Vhost) -> AsyncIterator[Stack]:
    s = Stack(servers=servers, vhost=vhost)
    async with s.exits:
        yield s


STACK_BIN = Path(os.environ.get("STACK_CACHE", Path.home() / ".cache/petsit-stack")) / "bin"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = int(os.environ.get("PG_PORT", "55432"))


@dataclass
class FerretDbOverProxy:
    """A FerretDB of the test's own whose PostgreSQL connections go through a FaultProxy: cut it, and PostgreSQL is
    down behind a FerretDB that still answers (every command then fails with an OperationFailure)."""

    mongodb_url: str
    postgresql: FaultProxy


@pytest.fixture
async def ferretdb_over_proxy(tmp_path: Path) -> AsyncIterator[FerretDbOverProxy]:
    ferretdb, createdb, dropdb = STACK_BIN / "ferretdb", PG_BIN / "createdb", PG_BIN / "dropdb"
    if not (ferretdb.exists() and createdb.exists() and listening(PG_PORT)):
        pytest.skip("needs the local stack's FerretDB and PostgreSQL (deploy/local/stack.sh)")
    database = unique("ferretdb_faults").replace("-", "_")
    pg = ["-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres"]
    async with AsyncExitStack() as cleanup:
        assert await _run(str(createdb), *pg, database) == 0, "createdb failed"
        cleanup.push_async_callback(_run, str(dropdb), *pg, "--force", database)
        proxy = await FaultProxy("127.0.0.1", PG_PORT).start()
        cleanup.push_async_callback(proxy.close)
        port = free_port()
        log = tmp_path / "ferretdb.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                str(ferretdb),
                "--handler=postgresql",
                # As the local stack's (pool_max_conns=50): a smaller pool than the services' can wedge FerretDB v1.
                f"--postgresql-url=postgres://postgres@127.0.0.1:{proxy.port}/{database}?pool_max_conns=50&sslmode=disable",
                f"--listen-addr=127.0.0.1:{port}",
                f"--state-dir={tmp_path}",
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=warn",
                stdout=out,
                stderr=out,
            )
        cleanup.push_async_callback(_stop, process)
        deadline = time.monotonic() + 20
        while not listening(port):
            assert time.monotonic() < deadline and process.returncode is None, f"FerretDB did not start: see {log}"
            await asyncio.sleep(0.05)
        yield FerretDbOverProxy(f"mongodb://127.0.0.1:{port}/", proxy)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _run(*command: str) -> int:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()
