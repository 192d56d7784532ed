from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from booking import codec, domain
from booking_contracts import JobRequestCancelled
from tests.support.requests import CLIENT, NOW, a_request


def test_a_request_survives_the_round_trip_through_its_document() -> None:
    cancelled = domain.cancel(a_request(), by=CLIENT, now=NOW, reason="oops")
    assert codec.from_document(codec.to_document(cancelled)) == cancelled


def test_the_cancellation_event_carries_everything_consumers_need() -> None:
    cancelled = domain.cancel(a_request(), by=CLIENT, now=NOW, reason="oops")
    event = codec.cloud_event(cancelled, event_id=uuid.uuid4(), correlation_id="corr-1")
    wire = orjson.loads(event.model_dump_json())
    assert wire["type"] == "job_request.cancelled" and wire["specversion"] == "1.0"
    assert wire["correlationid"] == "corr-1" and wire["subject"] == "jr1"
    assert wire["time"] == "2026-11-25T16:00:00Z"
    assert wire["dataschema"].endswith("/job_request.cancelled/v1")
    data = JobRequestCancelled.model_validate(wire["data"])
    assert data.client.email == "ann@example.com" and data.business.admin_email == "admin@example.com"
    assert data.business.timezone == "Europe/London" and [p.name for p in data.pets] == ["Rex"]
    assert data.cancelled_at == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert data.cancelled_by.kind == "client" and data.reason == "oops"


def test_each_status_records_its_own_event_type() -> None:
    requested = a_request()
    scheduled = domain.schedule(requested, by=domain.Actor("admin", "a"), now=NOW)
    assert codec.cloud_event(requested, event_id=uuid.uuid4(), correlation_id="").type == "job_request.submitted"
    assert codec.cloud_event(scheduled, event_id=uuid.uuid4(), correlation_id="").type == "job_request.scheduled"


def test_an_event_stored_with_an_overlong_correlation_id_still_makes_a_valid_amqp_message() -> None:
    from booking.relay import amqp_message

    doc = {
        "_id": str(uuid.uuid4()),
        "payload": "{}",
        "type": "job_request.cancelled",
        "occurred_at": NOW,
        "correlation_id": "é" * 200,  # 400 bytes: over the 255 an AMQP property may hold
    }
    message = amqp_message(doc)
    assert message.properties.marshal()  # pamqp refuses a property over 255 bytes
    assert message.correlation_id == "é" * 127
