"""The HTTP hop alone (step 1 of the benchmark): the services' HTTP stack answering a cancel-sized request with no work.

FastAPI under uvicorn (httptools, uvloop), as the services run: the route takes the cancel's path and body and answers
a job request's JSON of the real size, without auth, middlewares or any database. What it costs is the least any
design pays per cancellation for its HTTP request, client and server together. Only here, in bench/. Run:
`uvicorn --factory bench.http_floor:create_app`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from booking.api.models import CancelBody

ANSWER = {
    "id": "jr-00000000000000000000000000",
    "business_id": "biz-bench",
    "client_id": "cl-bench",
    "service": {"id": "svc-walk-30", "name": "Dog Walk 30 min", "duration_minutes": 30},
    "pets": [{"id": "pet-rex", "name": "Rex"}],
    "date": "2027-01-04",
    "start_time": "09:00",
    "notes": "",
    "status": "cancelled",
    "cancellable": False,
    "submitted_at": "2026-11-26T02:00:00Z",
    "scheduled_at": None,
    "cancelled_at": "2026-11-26T02:00:01Z",
    "cancelled_by": {"kind": "client", "id": "cl-bench"},
    "cancel_reason": None,
}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/portal/job-requests/{job_request_id}/cancel")
    async def cancel(job_request_id: str, body: CancelBody | None = None) -> dict[str, Any]:
        return ANSWER | {"id": job_request_id}

    return app
