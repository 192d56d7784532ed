"""What the consumer chain parks before any handler runs: decode_event on bodies of every kind, no servers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service_runtime.consumer import MAX_EVENT_BYTES, Rejected, Skipped, decode_event
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


def a_v2_twin(published: str | None) -> bytes:
    body = wire()
    body["dataschema"] = body["dataschema"].replace("/v1", "/v2")
    if published is not None:
        body["publishedversions"] = published
    return json.dumps(body).encode()


def test_a_version_this_reader_does_not_know_is_skipped_when_the_event_names_a_twin_in_one_it_knows() -> None:
    with pytest.raises(Skipped) as skipped:
        decode_event(a_v2_twin("1,2"))
    assert skipped.value.reason == "other_version"
    assert "v1 twin" in skipped.value.detail


@pytest.mark.parametrize("published", [None, "2", "2,3", "1;2", "01,2", "", "1,3", "1"])
def test_a_version_this_reader_does_not_know_is_parked_when_no_known_twin_is_named(published: str | None) -> None:
    # "1,3" and "1": the list does not name this event's own version (2), so it is no twin of a v1.
    assert reason(a_v2_twin(published)) == "unknown_event"


@pytest.mark.parametrize("dataschema_tail", ["v1.0", "V1", "latest"])
def test_an_event_whose_own_version_cannot_be_read_is_parked_even_when_it_names_twins(dataschema_tail: str) -> None:
    body = wire()
    body["dataschema"] = body["dataschema"].rsplit("/", 1)[0] + "/" + dataschema_tail
    body["publishedversions"] = "1,2"
    assert reason(json.dumps(body).encode()) == "unknown_event"


def test_a_known_version_with_a_malformed_twin_list_still_decodes() -> None:
    body = wire()
    body["publishedversions"] = "1, 2"
    assert decode_event(json.dumps(body).encode()).type == "job_request.cancelled"


def test_a_known_version_that_names_its_twins_decodes_and_keeps_the_attribute() -> None:
    body = wire()
    body["publishedversions"] = "1,2"
    event = decode_event(json.dumps(body).encode())
    assert event.published_versions == "1,2"
    assert json.loads(event.model_dump_json())["publishedversions"] == "1,2"


def test_an_event_of_one_version_only_is_written_without_the_attribute() -> None:
    assert "publishedversions" not in json.loads(cancelled_event().model_dump_json())
