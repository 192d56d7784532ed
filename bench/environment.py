"""The bench's own RabbitMQ vhost, databases and queues, the services as processes, and seeded job requests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
from pymongo import AsyncMongoClient

from booking import domain
from booking.codec import cloud_event, to_document
from booking.domain import Actor, Business, Client, Pet, Service
from booking.settings import Settings as BookingSettings
from service_runtime.auth import Principal, TokenCodec
from tests.support.processes import ServiceProcess, free_port
from tests.support.servers import LOCAL, Servers

RESULTS = Path(__file__).parent / "results"


@dataclass
class Run:
    """One bench run: a unique name, its vhost, its databases and queues."""

    servers: Servers = LOCAL
    name: str = field(default_factory=lambda: f"bench_{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid4().hex[:6]}")

    @property
    def vhost(self) -> str:
        return self.name

    @property
    def amqp_url(self) -> str:
        return f"{self.servers.amqp_url.rstrip('/')}/{quote(self.vhost, safe='')}"

    def db(self, part: str) -> str:
        return f"{self.name}_{part}"

    def create_vhost(self) -> None:
        with httpx.Client(base_url=self.servers.rabbitmq_management_url, auth=("guest", "guest"), timeout=10) as api:
            api.put(f"/api/vhosts/{self.vhost}").raise_for_status()
            perms = {"configure": ".*", "write": ".*", "read": ".*"}
            api.put(f"/api/permissions/{self.vhost}/guest", json=perms).raise_for_status()

    def delete_vhost(self) -> None:
        with httpx.Client(base_url=self.servers.rabbitmq_management_url, auth=("guest", "guest"), timeout=30) as api:
            api.delete(f"/api/vhosts/{self.vhost}")

    def log_dir(self) -> Path:
        path = RESULTS / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Tuning:
    """The knobs the bench passes to the services (env names as the services read them)."""

    prefetch: int = 200
    smtp_connections: int = 8
    relay_batch_size: int = 500
    consumer_nice: int = 0  # > 0: notifier and audit yield the cores to booking's API (see bench/README.md)

    def env(self) -> dict[str, str]:
        return {"PREFETCH": str(self.prefetch), "SMTP_CONNECTIONS": str(self.smtp_connections)}


def start_services(run: Run, tuning: Tuning) -> dict[str, ServiceProcess]:
    """Booking, notifier and audit as real processes on the run's vhost, databases and queues."""
    common = {
        **run.servers.service_env(amqp_url=run.amqp_url),
        "LOG_LEVEL": "WARNING",
        "ENVIRONMENT": "local",
        **tuning.env(),
    }
    envs = {
        "booking": {**common, "MONGODB_DATABASE": run.db("booking"), "RELAY_BATCH_SIZE": str(tuning.relay_batch_size)},
        "notifier": {**common, "MONGODB_DATABASE": run.db("notifier"), "QUEUE": f"notifier.{run.name}"},
        "audit": {**common, "MONGODB_DATABASE": run.db("audit"), "QUEUE": f"audit.{run.name}"},
    }
    procs = {name: ServiceProcess(name, env, run.log_dir() / f"{name}.log") for name, env in envs.items()}
    for proc in procs.values():
        proc.start(ready_timeout=60)
    for name in ("notifier", "audit"):
        lower_priority(procs[name], tuning.consumer_nice)
    return procs


def lower_priority(proc: ServiceProcess, nice: int) -> None:
    """Raise the nice value of every thread of the process (on Linux a nice value is per thread).

    Everything shares two cores here; in production each service has CPU of its own (its pods, their requests).
    A consumer's work can wait a little where an HTTP answer cannot: the decoupled design allows that priority,
    the synchronous one cannot, since it answers only after doing all the work.
    """
    if nice <= 0 or proc.process is None:
        return
    for task in Path(f"/proc/{proc.process.pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def start_slow_smtp(servers: Servers, reply_delay_ms: float) -> tuple[subprocess.Popen[bytes], Servers]:
    """A relay in front of the SMTP server that delays each reply (bench/slow_smtp.py); the servers to use with it."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.slow_smtp", "--port", str(port), "--reply-delay-ms", str(reply_delay_ms)]
    cmd += ["--target-host", servers.smtp_host, "--target-port", str(servers.smtp_port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return proc, replace(servers, smtp_host="127.0.0.1", smtp_port=port)
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("bench.slow_smtp did not start listening")


def start_sync_app(run: Run, tuning: Tuning) -> tuple[subprocess.Popen[bytes], str]:
    """The synchronous comparison endpoint (bench/sync_app.py) under uvicorn, as its own process."""
    env = {
        "MONGODB_URL": run.servers.mongodb_url,
        "BENCH_SYNC_DATABASE": run.db("sync"),
        "SMTP_HOST": run.servers.smtp_host,
        "SMTP_PORT": str(run.servers.smtp_port),
        "SMTP_CONNECTIONS": str(tuning.smtp_connections),
    }
    return start_uvicorn_app("bench.sync_app:create_app", run.log_dir() / "sync.log", env)


def start_uvicorn_app(
    factory: str, log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """An app of bench/ under uvicorn (as the services run: httptools, uvloop), as its own process, once it answers
    its `/healthz`; the process and its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port)]
    with log_path.open("ab") as log:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [*cmd, "--log-level", "warning", "--no-access-log"],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{factory} exited at start (see {log_path})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"{factory} not ready")


@dataclass(frozen=True)
class Tenant:
    """The bench's business and client, and the client's bearer header."""

    business: Business
    client: Client
    service: Service
    pet: Pet
    headers: dict[str, str]


def tenant(run: Run, label: str) -> Tenant:
    """A business of its own per measured step, so that its mail and records are counted apart."""
    key = f"{run.name}-{label}"
    business = Business(f"{key}-biz", "Happy Paws", f"admin-{key}@paws.example", "Europe/London")
    client = Client(f"{key}-client", "Ann", f"client-{key}@client.example")
    token = TokenCodec(BookingSettings().auth_secret.get_secret_value()).issue(
        Principal("client", client.id, business.id)
    )
    return Tenant(
        business,
        client,
        Service(f"{run.name}-walk", "Dog Walk 30 min", 30),
        Pet(f"{run.name}-rex", "Rex", "dog"),
        {"Authorization": f"Bearer {token}"},
    )


async def seed_requests(mongo: AsyncMongoClient[dict[str, Any]], database: str, who: Tenant, count: int) -> list[str]:
    """`count` submitted job requests, stored as booking stores them (event + projection), already published.

    Submitting is not what is measured, so the requests are written in bulk (insert_many of 100) instead of
    through the API; the submitted events are marked published so the relay and audit do not replay them.
    """
    db = mongo[database]
    await db["businesses"].replace_one(
        {"_id": who.business.id},
        {
            "_id": who.business.id,
            "name": who.business.name,
            "admin_email": who.business.admin_email,
            "timezone": who.business.timezone,
        },
        upsert=True,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    events, projections, ids = [], [], []
    for _ in range(count):
        request = domain.submit(
            id=str(uuid4()),
            client=who.client,
            business=who.business,
            service=who.service,
            pets=(who.pet,),
            on=date.today() + timedelta(days=7),
            at=clock_time(9, 0),
            notes="",
            by=Actor("client", who.client.id),
            now=now,
        )
        event_id = uuid4()
        event = cloud_event(request, event_id=event_id, correlation_id="bench-seed")
        events.append(
            {
                "_id": str(event_id),
                "stream_id": request.id,
                "version": request.version,
                "type": event.type,
                "occurred_at": event.occurred_at,
                "correlation_id": "bench-seed",
                "state": to_document(request),
                "payload": event.model_dump_json(),
                "published_at": now,
            }
        )
        projections.append(to_document(request))
        ids.append(request.id)
    for start in range(0, count, 100):
        await db["job_request_events"].insert_many(events[start : start + 100], ordered=False)
        await db["job_requests"].insert_many(projections[start : start + 100], ordered=False)
    return ids
