"""What the consumer chain parks before any handler runs: decode_event on bodies of every kind, no servers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service_runtime.consumer import MAX_EVENT_BYTES, Rejected, decode_event
from tests.support.events import cancelled_event


def wire(**data_overrides: Any) -> dict[str, Any]:
    event = cancelled_event()
    body: dict[str, Any] = json.loads(event.model_dump_json(by_alias=True))
    body["data"].update(data_overrides)
    return body


def reason(body: bytes) -> str:
    with pytest.raises(Rejected) as refused:
        decode_event(body)
    return refused.value.reason


def test_a_valid_cancellation_decodes() -> None:
    assert decode_event(json.dumps(wire()).encode()).type == "job_request.cancelled"


def test_an_oversized_body_is_parked_without_being_parsed() -> None:
    assert reason(b"{" + b" " * MAX_EVENT_BYTES + b"}") == "too_large"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "Etc", ""])
def test_an_unknown_business_timezone_is_an_invalid_schema_not_a_retry_later(zone: str) -> None:
    body = wire()
    body["data"]["business"]["timezone"] = zone
    assert reason(json.dumps(body).encode()) == "invalid_schema"


def test_a_wall_clock_time_with_an_offset_is_an_invalid_schema() -> None:
    assert reason(json.dumps(wire(requested_start_time="09:00:00+05:00")).encode()) == "invalid_schema"


def test_an_event_time_without_a_timezone_is_an_invalid_schema() -> None:
    body = wire()
    body["time"] = "2026-11-25T16:20:05"
    assert reason(json.dumps(body).encode()) == "invalid_schema"
