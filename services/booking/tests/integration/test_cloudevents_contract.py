"""The official CloudEvents SDK parses a message exactly as the relay published it to RabbitMQ."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq
from cloudevents.core.formats.json import JSONFormat

from booking_contracts import JobRequestCancelled
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_cloudevents_sdk_reads_a_published_cancellation(booking_portal: Any) -> None:
    created = await booking_portal.http.post(
        "/v1/portal/job-requests",
        headers=booking_portal.client(booking_portal.ann),
        json={
            "service_id": booking_portal.service_id,
            "date": (date.today() + timedelta(days=3)).isoformat(),
            "start_time": "14:30",
            "pet_ids": [booking_portal.ann_pet],
        },
    )
    request_id = created.json()["id"]
    await booking_portal.http.post(
        f"/v1/portal/job-requests/{request_id}/cancel",
        headers={**booking_portal.client(booking_portal.ann), "X-Correlation-ID": "corr-sdk"},
    )
    [wire] = await eventually(lambda: booking_portal.events_of(request_id, "job_request.cancelled"))
    published = next(m for m in booking_portal.messages if m.message_id == wire["id"])

    event = from_rabbitmq(
        RabbitMQMessage(headers={}, content_type=published.content_type, body=published.body), JSONFormat()
    )
    attributes = event.get_attributes()
    assert attributes["specversion"] == "1.0"
    assert attributes["id"] == published.message_id
    assert attributes["type"] == "job_request.cancelled" == published.routing_key == published.type
    assert attributes["source"] == "/booking" and published.app_id == "booking"
    assert attributes["subject"] == request_id
    assert attributes["correlationid"] == "corr-sdk" == published.correlation_id
    assert attributes["dataschema"].endswith("/job_request.cancelled/v1")
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["time"].tzinfo is not None
    data = JobRequestCancelled.model_validate(event.get_data())
    assert data.job_request_id == request_id and data.requested_start_time.strftime("%H:%M") == "14:30"
