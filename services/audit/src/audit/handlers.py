"""Audit's handler: one readable, timestamped LOGS entry per job request event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from audit.store import ClientLogs
from booking_contracts import CloudEvent, JobRequestCancelled, JobRequestEvent, JobRequestScheduled, JobRequestSubmitted
from service_runtime.humanize import day_and_time

log = structlog.get_logger(__name__)

CONSUMER = "audit.client_log"
VERBS = {JobRequestSubmitted: "submitted", JobRequestScheduled: "scheduled", JobRequestCancelled: "cancelled"}


def log_entry(event: CloudEvent[JobRequestEvent], *, now: datetime) -> dict[str, Any]:
    """The entry: type, when the change happened, who made it, which request, and a sentence saying it."""
    data = event.data
    actor = (
        data.cancelled_by
        if isinstance(data, JobRequestCancelled)
        else data.scheduled_by
        if isinstance(data, JobRequestScheduled)
        else data.submitted_by  # type: ignore[attr-defined]
    )
    verb = VERBS[type(data)]
    when = day_and_time(data.requested_date, data.requested_start_time)
    summary = f"Job request {verb} by {actor.kind}: {data.service.name} on {when}"
    if isinstance(data, JobRequestCancelled) and data.reason:
        summary += f" (reason: {data.reason})"
    return {
        "_id": str(event.id),
        "dedupe_key": f"{CONSUMER}:{event.id}",
        "business_id": data.business.id,
        "client_id": data.client.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "timezone": data.business.timezone,
        "actor": {"kind": actor.kind, "id": actor.id},
        "job_request_id": data.job_request_id,
        "summary": summary,
        "correlation_id": event.correlation_id,
        "logged_at": now,
    }


async def on_job_request_event(
    event: CloudEvent[JobRequestEvent], *, logs: ClientLogs, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> None:
    """Write the client's LOGS entry once per event."""
    if await logs.add(log_entry(event, now=clock())):
        log.info("log_entry.written", job_request_id=event.data.job_request_id, type=event.type)
