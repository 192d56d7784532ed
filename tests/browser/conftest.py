"""The three services as processes, Debian's Chromium driven by Playwright, and axe-core from the npm registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.support.ids import unique
from tests.support.processes import ServiceProcess
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_VERSION = "4.14.1"
AXE_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "booking-browser-tests" / f"axe-{AXE_VERSION}"
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AUTH_SECRET = "browser-secret-" + "x" * 32


@dataclass
class Stack:
    booking: ServiceProcess
    notifier: ServiceProcess
    audit: ServiceProcess
    seed: dict[str, Any]
    http: httpx.AsyncClient

    @property
    def admin_token(self) -> str:
        return str(self.seed["admin_token"])

    def client(self, index: int = 0) -> dict[str, Any]:
        return dict(self.seed["clients"][index])

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def client_headers(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.client(index)['token']}"}


@pytest.fixture(scope="session")
def processes(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("browser-logs")
    run = unique("browser").replace("-", "_")
    with own_vhost(servers, "browser") as (_, amqp_url):
        common = {**servers.service_env(amqp_url=amqp_url), "AUTH_SECRET": AUTH_SECRET}
        procs = {
            name: ServiceProcess(name, {**common, "MONGODB_DATABASE": f"{name}_{run}"}, logs / f"{name}.log")
            for name in ("booking", "notifier", "audit")
        }
        booking, notifier, audit = procs["booking"], procs["notifier"], procs["audit"]
        # The admin pages (served by booking) call notifier and audit: each allows booking's origin only.
        booking.env.update(NOTIFIER_URL=notifier.url, AUDIT_URL=audit.url, RELAY_SWEEP_SECONDS="1")
        # Short streams, so that the tests also go through the page's reconnect with Last-Event-ID.
        notifier.env.update(CORS_ORIGINS=booking.url, QUEUE=f"notifier.{run}", NOTICE_STREAM_SECONDS="3")
        audit.env.update(CORS_ORIGINS=booking.url, QUEUE=f"audit.{run}")
        try:
            for proc in procs.values():
                proc.start()
            seeded = subprocess.run(
                [sys.executable, "-m", "booking", "seed-demo"],
                env={**os.environ, **booking.env},
                capture_output=True,
                timeout=60,
            )
            assert seeded.returncode == 0, seeded.stderr.decode()
            yield {"procs": procs, "seed": json.loads(seeded.stdout)}
        finally:
            for proc in procs.values():
                proc.stop()


@pytest.fixture(scope="session")
async def stack(processes: dict[str, Any]) -> AsyncIterator[Stack]:
    procs = processes["procs"]
    async with httpx.AsyncClient(timeout=10) as http:
        yield Stack(procs["booking"], procs["notifier"], procs["audit"], processes["seed"], http)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's Chromium (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """Open fresh browser contexts (separate storage, like separate people); all closed after the test."""
    opened: list[BrowserContext] = []

    async def open_context(**options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        await context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's browser bundle, installed once from the npm registry into a cache outside the repository."""
    bundle = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not bundle.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install axe-core from the npm registry"
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(AXE_CACHE),
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    return bundle.read_text()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
