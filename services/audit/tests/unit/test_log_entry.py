from __future__ import annotations

from datetime import UTC, datetime

from audit.handlers import log_entry
from tests.support.events import cancelled_event


def test_a_cancellation_is_logged_with_its_timestamp_actor_and_a_readable_summary() -> None:
    event = cancelled_event()
    entry = log_entry(event, now=datetime(2026, 11, 25, 17, tzinfo=UTC))  # type: ignore[arg-type]
    assert entry["_id"] == str(event.id)
    assert entry["occurred_at"] == event.data.cancelled_at
    assert entry["actor"] == {"kind": "client", "id": event.data.client.id}
    assert entry["summary"] == "Job request cancelled by client: Dog Walk 30 min on Thu 3 Dec 2026, 09:00"


def test_an_admin_cancellation_with_a_reason_says_so() -> None:
    event = cancelled_event(cancelled_by={"kind": "admin", "id": "boss"}, reason="Client phoned")
    entry = log_entry(event, now=datetime(2026, 11, 25, tzinfo=UTC))  # type: ignore[arg-type]
    assert entry["summary"].startswith("Job request cancelled by admin: ")
    assert entry["summary"].endswith("(reason: Client phoned)")
