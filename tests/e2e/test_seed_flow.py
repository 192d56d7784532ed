"""The help article's scenario, end to end: three service processes over real RabbitMQ, FerretDB/MongoDB and SMTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ids import unique
from tests.support.mailpit import Mailpit
from tests.support.processes import ServiceProcess
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


@dataclass
class Platform:
    booking: httpx.AsyncClient
    notifier: httpx.AsyncClient
    audit: httpx.AsyncClient
    seed: dict[str, Any]

    def client_headers(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['clients'][index]['token']}"}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['admin_token']}"}


@pytest.fixture(scope="module")
def processes(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("logs")
    run = unique("e2e").replace("-", "_")
    with own_vhost(servers, "e2e") as (_, amqp_url):
        common = {**servers.service_env(amqp_url=amqp_url), "AUTH_SECRET": "e2e-secret-" + "x" * 32}
        envs = {
            "booking": {**common, "MONGODB_DATABASE": f"booking_{run}", "RELAY_SWEEP_SECONDS": "1"},
            "notifier": {**common, "MONGODB_DATABASE": f"notifier_{run}"},
            "audit": {**common, "MONGODB_DATABASE": f"audit_{run}"},
        }
        procs = {name: ServiceProcess(name, env, logs / f"{name}.log") for name, env in envs.items()}
        try:
            for proc in procs.values():
                proc.start()
            seeded = subprocess.run(
                [sys.executable, "-m", "booking", "seed-demo"],
                env={**os.environ, **envs["booking"]},
                capture_output=True,
                timeout=60,
            )
            assert seeded.returncode == 0, seeded.stderr.decode()
            yield {"procs": procs, "seed": json.loads(seeded.stdout), "envs": envs}
        finally:
            # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit code is -15 then.
            codes = {name: proc.stop() for name, proc in procs.items()}
            for name, proc in procs.items():
                assert codes[name] in (0, -signal.SIGTERM), f"{name} did not stop on SIGTERM:\n{proc.tail()}"
                assert "Application shutdown complete" in proc.tail(), f"{name} did not shut down gracefully"
                if name != "booking":  # consumers stop taking messages as soon as SIGTERM arrives
                    assert '"consumer.cancelled"' in proc.tail(60), f"{name} did not cancel its consumer on SIGTERM"


@pytest.fixture(scope="module")
async def platform(processes: dict[str, Any]) -> AsyncIterator[Platform]:
    procs = processes["procs"]
    async with (
        httpx.AsyncClient(base_url=procs["booking"].url, timeout=10) as booking,
        httpx.AsyncClient(base_url=procs["notifier"].url, timeout=10) as notifier,
        httpx.AsyncClient(base_url=procs["audit"].url, timeout=10) as audit,
    ):
        yield Platform(booking, notifier, audit, processes["seed"])


async def test_a_client_cancels_a_job_request_and_everyone_hears_about_it(platform: Platform, mailpit: Mailpit) -> None:
    client = platform.seed["clients"][0]
    services = (await platform.booking.get("/v1/portal/services", headers=platform.client_headers())).json()
    pets = (await platform.booking.get("/v1/portal/pets", headers=platform.client_headers())).json()
    day = (date.today() + timedelta(days=9)).isoformat()
    submitted = await platform.booking.post(
        "/v1/portal/job-requests",
        headers=platform.client_headers(),
        json={"service_id": services[0]["id"], "date": day, "start_time": "09:00", "pet_ids": [pets[0]["id"]]},
    )
    assert submitted.status_code == 201, submitted.text
    request_id = submitted.json()["id"]

    # In the schedule, the month then the day: the request shows as REQ: and can be cancelled.
    month = (
        await platform.booking.get("/v1/portal/schedule", params={"month": day[:7]}, headers=platform.client_headers())
    ).json()
    labels = {e["job_request_id"]: e["label"] for d in month["days"] for e in d["entries"]}
    assert labels[request_id].startswith("REQ: ")
    listed = (await platform.booking.get(f"/v1/portal/schedule/{day}", headers=platform.client_headers())).json()
    assert {r["id"]: r["cancellable"] for r in listed["job_requests"]}[request_id] is True

    cancelled = await platform.booking.post(
        f"/v1/portal/job-requests/{request_id}/cancel",
        headers={**platform.client_headers(), "X-Correlation-ID": f"corr-{request_id}"},
        json={"reason": "Changed my mind"},
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    cancelled_at = datetime.fromisoformat(cancelled.json()["cancelled_at"])

    # The client gets the confirmation email, with the company admin inbox in CC.
    [mail] = await eventually(lambda: mailpit.search(request_id), timeout=15)
    assert [a["Address"] for a in mail["To"]] == [client_email(platform)]
    assert [a["Address"] for a in mail["Cc"]] == ["admin@happypaws.example"]
    # A notice appears on the admin's HOME screen.
    notices = await eventually(lambda: _notices_about(platform, request_id), timeout=15)
    assert client["name"] in notices[0]["message"] and notices[0]["read_at"] is None
    # The client's LOGS get an entry with the date and timestamp of the cancellation.
    logs = await eventually(
        lambda: _logs_about(platform, client["id"], request_id, "job_request.cancelled"), timeout=15
    )
    assert datetime.fromisoformat(logs[0]["occurred_at"]) == cancelled_at
    assert logs[0]["summary"].startswith("Job request cancelled by client: ")

    # Repeating the cancel changes nothing: same time, no second email, notice or log entry.
    again = await platform.booking.post(
        f"/v1/portal/job-requests/{request_id}/cancel", headers=platform.client_headers()
    )
    assert again.status_code == 200 and again.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
    marker = await _submit_and_cancel(platform, day)
    await eventually(lambda: _logs_about(platform, client["id"], marker, "job_request.cancelled"), timeout=15)
    await eventually(lambda: mailpit.search(marker), timeout=15)
    assert len(await mailpit.search(request_id)) == 1
    assert len(await _notices_about(platform, request_id)) == 1
    assert len(await _logs_about(platform, client["id"], request_id, "job_request.cancelled")) == 1


async def test_cancelling_a_scheduled_job_is_refused_and_nobody_is_notified(
    platform: Platform, mailpit: Mailpit
) -> None:
    scheduled = (
        await platform.booking.get(
            "/v1/admin/job-requests", params={"status": "scheduled"}, headers=platform.admin_headers()
        )
    ).json()
    mine = next(r for r in scheduled if r["client"]["id"] == platform.seed["clients"][0]["id"])
    refused = await platform.booking.post(
        f"/v1/portal/job-requests/{mine['id']}/cancel", headers=platform.client_headers()
    )
    assert refused.status_code == 409 and refused.json()["code"] == "job_request_already_scheduled"
    assert await mailpit.search(mine["id"]) == []


async def test_the_correlation_id_of_the_request_reaches_the_consumers_logs(
    platform: Platform, processes: dict[str, Any]
) -> None:
    request_id = await _submit_and_cancel(
        platform, (date.today() + timedelta(days=10)).isoformat(), correlation_id="corr-trace-me"
    )
    await eventually(
        lambda: _logs_about(platform, platform.seed["clients"][0]["id"], request_id, "job_request.cancelled"),
        timeout=15,
    )
    for name in ("booking", "notifier", "audit"):
        log_path: Path = processes["procs"][name].log_path
        await eventually(lambda p=log_path: "corr-trace-me" in p.read_text(), timeout=10)
    notifier_log = processes["procs"]["notifier"].log_path.read_text()
    assert client_email(platform) not in notifier_log, "emails must not be logged in clear"


def client_email(platform: Platform) -> str:
    return "ann@client.example"


async def _submit_and_cancel(platform: Platform, day: str, correlation_id: str | None = None) -> str:
    services = (await platform.booking.get("/v1/portal/services", headers=platform.client_headers())).json()
    pets = (await platform.booking.get("/v1/portal/pets", headers=platform.client_headers())).json()
    headers = {**platform.client_headers(), **({"X-Correlation-ID": correlation_id} if correlation_id else {})}
    submitted = await platform.booking.post(
        "/v1/portal/job-requests",
        headers=headers,
        json={"service_id": services[0]["id"], "date": day, "start_time": "10:00", "pet_ids": [pets[0]["id"]]},
    )
    request_id: str = submitted.json()["id"]
    await platform.booking.post(f"/v1/portal/job-requests/{request_id}/cancel", headers=headers)
    return request_id


async def _notices_about(platform: Platform, request_id: str) -> list[dict[str, Any]]:
    response = await platform.notifier.get("/v1/admin/notices", params={"limit": 200}, headers=platform.admin_headers())
    return [n for n in response.json()["notices"] if n["job_request_id"] == request_id]


async def _logs_about(platform: Platform, client_id: str, request_id: str, event_type: str) -> list[dict[str, Any]]:
    response = await platform.audit.get(
        f"/v1/admin/clients/{client_id}/logs", params={"limit": 500}, headers=platform.admin_headers()
    )
    return [e for e in response.json() if e["job_request_id"] == request_id and e["type"] == event_type]
