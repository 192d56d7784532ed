"""Building job request events for consumer tests."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from booking_contracts import SOURCE, CloudEvent, JobRequestCancelled, dataschema_for
from tests.support.ids import unique


def cancelled_event(*, client_email: str | None = None, **overrides: Any) -> CloudEvent[JobRequestCancelled]:
    """A valid `job_request.cancelled` v1 event with unique ids (override any data field)."""
    client_id = unique("client")
    data: dict[str, Any] = {
        "job_request_id": unique("jr"),
        "client": {"id": client_id, "name": "Ann Example", "email": client_email or f"{client_id}@client.example"},
        "business": {
            "id": unique("biz"),
            "name": "Happy Paws",
            "admin_email": f"{unique('admin')}@happypaws.example",
            "timezone": "Europe/London",
        },
        "service": {"id": "dog-walk-30", "name": "Dog Walk 30 min", "duration_minutes": 30},
        "pets": [{"id": "rex", "name": "Rex", "species": "dog"}],
        "requested_date": date(2026, 12, 3),
        "requested_start_time": time(9, 0),
        "cancelled_at": datetime(2026, 11, 25, 16, 20, 5, 123000, tzinfo=UTC),
        "cancelled_by": {"kind": "client", "id": client_id},
        "reason": None,
    }
    data.update(overrides)
    return CloudEvent[JobRequestCancelled](
        id=uuid.uuid4(),
        type="job_request.cancelled",
        source=SOURCE,
        dataschema=dataschema_for("job_request.cancelled", 1),
        occurred_at=data["cancelled_at"],
        correlation_id=unique("corr"),
        subject=data["job_request_id"],
        data=JobRequestCancelled.model_validate(data),
    )
