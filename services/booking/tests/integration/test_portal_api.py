from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from tests.support.ids import unique
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

NEXT_WEEK = (date.today() + timedelta(days=7)).isoformat()


async def submit(portal: Any, who: str | None = None, pet: str | None = None, on: str = NEXT_WEEK) -> dict[str, Any]:
    who = who or portal.ann
    response = await portal.http.post(
        "/v1/portal/job-requests",
        headers=portal.client(who),
        json={"service_id": portal.service_id, "date": on, "start_time": "09:00", "pet_ids": [pet or portal.ann_pet]},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_booking_form_lists_the_business_services_and_the_clients_own_pets(booking_portal: Any) -> None:
    services = await booking_portal.http.get("/v1/portal/services", headers=booking_portal.client(booking_portal.ann))
    pets = await booking_portal.http.get("/v1/portal/pets", headers=booking_portal.client(booking_portal.ann))
    assert [s["id"] for s in services.json()] == [booking_portal.service_id]
    assert [p["id"] for p in pets.json()] == [booking_portal.ann_pet]


async def test_a_submitted_request_shows_as_req_in_the_month_and_cancellable_on_its_day(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    assert created["status"] == "requested" and created["cancellable"] is True
    month = await booking_portal.http.get(
        "/v1/portal/schedule", params={"month": NEXT_WEEK[:7]}, headers=booking_portal.client(booking_portal.ann)
    )
    entries = [e for d in month.json()["days"] for e in d["entries"] if e["job_request_id"] == created["id"]]
    assert entries and entries[0]["label"] == "REQ: Dog Walk 30 min"
    day = await booking_portal.http.get(
        f"/v1/portal/schedule/{NEXT_WEEK}", headers=booking_portal.client(booking_portal.ann)
    )
    listed = {r["id"]: r for r in day.json()["job_requests"]}
    assert listed[created["id"]]["cancellable"] is True


async def test_cancelling_answers_cancelled_and_publishes_one_event_with_everything_consumers_need(
    booking_portal: Any,
) -> None:
    created = await submit(booking_portal)
    response = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel",
        headers={**booking_portal.client(booking_portal.ann), "X-Correlation-ID": "corr-cancel-1"},
        json={"reason": "Plans changed"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled" and body["cancelled_at"] and body["cancellable"] is False
    events = await eventually(lambda: booking_portal.events_of(created["id"], "job_request.cancelled"))
    event = events[0]
    assert event["correlationid"] == "corr-cancel-1"
    assert event["data"]["reason"] == "Plans changed"
    assert event["data"]["client"]["email"] == f"{booking_portal.ann}@c.example"
    assert event["data"]["business"]["admin_email"] == f"{booking_portal.business_id}@paws.example"
    assert event["data"]["cancelled_by"] == {"kind": "client", "id": booking_portal.ann}
    message = next(m for m in booking_portal.messages if m.message_id == event["id"])
    assert message.content_type == "application/cloudevents+json; charset=utf-8"
    assert message.delivery_mode == 2 and message.correlation_id == "corr-cancel-1"
    assert message.routing_key == "job_request.cancelled"


async def test_repeating_a_cancel_returns_the_same_cancelled_at_and_publishes_nothing_new(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    url = f"/v1/portal/job-requests/{created['id']}/cancel"
    first = await booking_portal.http.post(url, headers=booking_portal.client(booking_portal.ann))
    second = await booking_portal.http.post(
        url, headers=booking_portal.client(booking_portal.ann), json={"reason": "again"}
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["cancelled_at"] == second.json()["cancelled_at"]
    await eventually(lambda: booking_portal.events_of(created["id"], "job_request.cancelled"))
    # A later event of another request proves the relay has moved past anything a repeat could have published.
    marker = await submit(booking_portal)
    await eventually(lambda: booking_portal.events_of(marker["id"]))
    assert len(booking_portal.events_of(created["id"], "job_request.cancelled")) == 1


def _keyed_submission(portal: Any, start_time: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Ann's submission at `start_time` next week, a fresh Idempotency-Key header, and Ann's auth header."""
    body = {"service_id": portal.service_id, "date": NEXT_WEEK, "start_time": start_time, "pet_ids": [portal.ann_pet]}
    return body, {"Idempotency-Key": unique("key")}, portal.client(portal.ann)


async def test_a_submission_retried_with_its_idempotency_key_makes_one_request_and_answers_it_again(
    booking_portal: Any,
) -> None:
    body, key, ann = _keyed_submission(booking_portal, "11:00")
    first = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    again = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    # Cancelled in between, a retry answers the request as it is now, and still makes no other.
    await booking_portal.http.post(f"/v1/portal/job-requests/{first.json()['id']}/cancel", headers=ann)
    late = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    assert (late.status_code, late.json()["id"], late.json()["status"]) == (201, first.json()["id"], "cancelled")
    marker = await submit(booking_portal)  # published after anything the retries could have published
    await eventually(lambda: booking_portal.events_of(marker["id"]))
    assert len(booking_portal.events_of(first.json()["id"], "job_request.submitted")) == 1


async def test_a_keyed_retry_after_the_projection_write_failed_shows_the_request_at_once(booking_portal: Any) -> None:
    body, key, ann = _keyed_submission(booking_portal, "14:00")
    first = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    request_id = first.json()["id"]
    # As if the first try stored its event, then failed (a 503) before its projection write.
    await booking_portal.projection._requests.delete_one({"_id": request_id})
    retry = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    shown = await booking_portal.http.get(f"/v1/portal/job-requests/{request_id}", headers=ann)
    assert (retry.status_code, retry.json()["id"]) == (201, request_id)
    assert shown.status_code == 200 and shown.json()["status"] == "requested"


async def test_an_idempotency_key_reused_for_another_request_is_refused_and_keys_are_each_clients_own(
    booking_portal: Any,
) -> None:
    body, key, ann = _keyed_submission(booking_portal, "12:00")
    first = await booking_portal.http.post("/v1/portal/job-requests", headers=ann | key, json=body)
    other = await booking_portal.http.post(
        "/v1/portal/job-requests", headers=ann | key, json=body | {"start_time": "13:00"}
    )
    assert first.status_code == 201
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    ben = await booking_portal.http.post(
        "/v1/portal/job-requests",
        headers=booking_portal.client(booking_portal.ben) | key,
        json=body | {"pet_ids": [booking_portal.ben_pet]},
    )
    assert ben.status_code == 201 and ben.json()["id"] != first.json()["id"]
    too_long = await booking_portal.http.post(
        "/v1/portal/job-requests", headers=ann | {"Idempotency-Key": "k" * 65}, json=body
    )
    assert (too_long.status_code, too_long.json()["code"]) == (422, "invalid_request")


async def test_a_cancel_refused_on_a_change_the_projection_missed_brings_the_projection_up_to_date(
    booking_portal: Any,
) -> None:
    from booking import domain
    from booking.domain import Actor
    from booking.handlers import utc_now

    created = await submit(booking_portal)
    requested = await booking_portal.projection.get(created["id"])
    # An admin's schedule whose writer crashed after its event insert, before its projection write.
    scheduled = domain.schedule(requested, by=Actor("admin", "boss"), now=utc_now())
    await booking_portal.stream.append(scheduled, correlation_id="crashed-writer")

    refused = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=booking_portal.client(booking_portal.ann)
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "job_request_already_scheduled")
    # At once, not when the relay's sweep gets to it (its grace is a second here).
    stored = await booking_portal.projection.get(created["id"])
    assert stored is not None and stored.status is domain.Status.SCHEDULED


async def test_client_cannot_cancel_a_scheduled_job(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    scheduled = await booking_portal.http.post(
        f"/v1/admin/job-requests/{created['id']}/schedule", headers=booking_portal.admin()
    )
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    refused = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=booking_portal.client(booking_portal.ann)
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "job_request_already_scheduled"
    assert "cancelled another way" in refused.json()["message"]
    day = await booking_portal.http.get(
        f"/v1/portal/schedule/{NEXT_WEEK}", headers=booking_portal.client(booking_portal.ann)
    )
    listed = {r["id"]: r for r in day.json()["job_requests"]}
    assert listed[created["id"]]["cancellable"] is False and listed[created["id"]]["label"] == "Dog Walk 30 min"


async def test_a_cancelled_request_cannot_be_scheduled(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=booking_portal.client(booking_portal.ann)
    )
    refused = await booking_portal.http.post(
        f"/v1/admin/job-requests/{created['id']}/schedule", headers=booking_portal.admin()
    )
    assert refused.status_code == 409 and refused.json()["code"] == "job_request_cancelled"


async def test_a_cancelled_request_leaves_the_processing_screen_and_the_month_view(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    listed = await booking_portal.http.get(
        "/v1/admin/job-requests", params={"status": "requested"}, headers=booking_portal.admin()
    )
    assert created["id"] in [r["id"] for r in listed.json()]
    await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=booking_portal.client(booking_portal.ann)
    )
    after = await booking_portal.http.get(
        "/v1/admin/job-requests", params={"status": "requested"}, headers=booking_portal.admin()
    )
    assert created["id"] not in [r["id"] for r in after.json()]
    cancelled = await booking_portal.http.get(
        "/v1/admin/job-requests", params={"status": "cancelled"}, headers=booking_portal.admin()
    )
    assert created["id"] in [r["id"] for r in cancelled.json()]
    month = await booking_portal.http.get(
        "/v1/portal/schedule", params={"month": NEXT_WEEK[:7]}, headers=booking_portal.client(booking_portal.ann)
    )
    assert created["id"] not in [e["job_request_id"] for d in month.json()["days"] for e in d["entries"]]


async def test_an_admin_cancels_on_the_clients_behalf(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    response = await booking_portal.http.post(
        f"/v1/admin/job-requests/{created['id']}/cancel",
        headers=booking_portal.admin(),
        json={"reason": "Client phoned"},
    )
    assert response.status_code == 200
    assert response.json()["cancelled_by"] == {"kind": "admin", "id": "boss"}


async def test_a_client_token_bound_to_another_business_sees_none_of_the_clients_pets_or_requests(
    booking_portal: Any,
) -> None:
    created = await submit(booking_portal)
    elsewhere = booking_portal.auth("client", booking_portal.ann, "another-business")
    pets = await booking_portal.http.get("/v1/portal/pets", headers=elsewhere)
    month = await booking_portal.http.get("/v1/portal/schedule", params={"month": NEXT_WEEK[:7]}, headers=elsewhere)
    day = await booking_portal.http.get(f"/v1/portal/schedule/{NEXT_WEEK}", headers=elsewhere)
    assert pets.status_code == 200 and pets.json() == []
    assert month.status_code == 200 and month.json()["days"] == []
    assert day.status_code == 200 and created["id"] not in {r["id"] for r in day.json()["job_requests"]}


async def test_go_to_portal_gives_a_token_for_that_client(booking_portal: Any) -> None:
    session = await booking_portal.http.post(
        f"/v1/admin/clients/{booking_portal.ben}/portal-session", headers=booking_portal.admin()
    )
    assert session.status_code == 200
    pets = await booking_portal.http.get(
        "/v1/portal/pets", headers={"Authorization": f"Bearer {session.json()['token']}"}
    )
    assert [p["id"] for p in pets.json()] == [booking_portal.ben_pet]
    unknown = await booking_portal.http.post("/v1/admin/clients/nobody/portal-session", headers=booking_portal.admin())
    assert unknown.status_code == 404 and unknown.json()["code"] == "client_not_found"


async def test_no_token_is_401_and_a_client_token_on_admin_routes_is_403(booking_portal: Any) -> None:
    none = await booking_portal.http.get("/v1/portal/pets")
    assert none.status_code == 401 and none.json()["code"] == "unauthorized"
    bad = await booking_portal.http.get("/v1/portal/pets", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    forbidden = await booking_portal.http.get(
        "/v1/admin/job-requests", headers=booking_portal.client(booking_portal.ann)
    )
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"


async def test_an_expired_token_is_401_saying_the_session_expired(booking_portal: Any) -> None:
    from datetime import UTC, datetime

    from service_runtime.auth import Principal

    old = booking_portal.tokens.issue(
        Principal("client", booking_portal.ann, booking_portal.business_id),
        ttl=timedelta(minutes=1),
        now=datetime(2020, 1, 1, tzinfo=UTC),
    )
    response = await booking_portal.http.get("/v1/portal/pets", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401 and "expired" in response.json()["message"]


async def test_another_clients_request_is_404_never_403(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    for method, url in (
        ("get", f"/v1/portal/job-requests/{created['id']}"),
        ("post", f"/v1/portal/job-requests/{created['id']}/cancel"),
    ):
        response = await getattr(booking_portal.http, method)(url, headers=booking_portal.client(booking_portal.ben))
        assert response.status_code == 404 and response.json()["code"] == "job_request_not_found"
    other_business = await booking_portal.http.post(
        f"/v1/admin/job-requests/{created['id']}/cancel", headers=booking_portal.auth("admin", "x", "other-business")
    )
    assert other_business.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 5}, "reason"),
        ({"why": "unknown field"}, "why"),
    ],
)
async def test_a_bad_cancel_body_is_422_with_a_code_and_changes_nothing(
    booking_portal: Any, body: dict[str, Any], field: str
) -> None:
    created = await submit(booking_portal)
    response = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=booking_portal.client(booking_portal.ann), json=body
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request" and field in response.json()["message"]
    still = await booking_portal.http.get(
        f"/v1/portal/job-requests/{created['id']}", headers=booking_portal.client(booking_portal.ann)
    )
    assert still.json()["status"] == "requested"


async def test_an_overlong_or_blank_pet_id_is_refused_in_characters_the_client_can_count(booking_portal: Any) -> None:
    headers = booking_portal.client(booking_portal.ann)
    base = {"service_id": booking_portal.service_id, "date": NEXT_WEEK, "start_time": "09:00"}
    for pet_id, message in (
        ("x" * 101, "String should have at most 100 characters"),
        ("   ", "String should have at least 1 character"),
    ):
        response = await booking_portal.http.post(
            "/v1/portal/job-requests", headers=headers, json={**base, "pet_ids": [pet_id]}
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "pet_ids.0", "message": message}]


async def test_an_overlong_reason_is_refused_in_characters_the_client_can_count(booking_portal: Any) -> None:
    created = await submit(booking_portal)
    headers = booking_portal.client(booking_portal.ann)
    response = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=headers, json={"reason": "x" * 501}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "reason", "message": "String should have at most 500 characters"}]
    exactly = await booking_portal.http.post(
        f"/v1/portal/job-requests/{created['id']}/cancel", headers=headers, json={"reason": "x" * 500}
    )
    assert exactly.status_code == 200 and exactly.json()["cancel_reason"] == "x" * 500


async def test_bad_submissions_are_refused_with_a_code(booking_portal: Any) -> None:
    headers = booking_portal.client(booking_portal.ann)
    base = {
        "service_id": booking_portal.service_id,
        "date": NEXT_WEEK,
        "start_time": "09:00",
        "pet_ids": [booking_portal.ann_pet],
    }
    cases = [
        ({**base, "pet_ids": [booking_portal.ben_pet]}, 422, "invalid_reference"),
        ({**base, "service_id": "nope"}, 422, "invalid_reference"),
        ({**base, "date": "2020-01-01"}, 422, "date_in_the_past"),
        ({**base, "date": _today_in_london(), "start_time": "00:00"}, 422, "date_in_the_past"),  # passed today
        ({**base, "start_time": "25:00"}, 422, "invalid_request"),
        ({**base, "pet_ids": []}, 422, "invalid_request"),
        ({**base, "notes": "x" * 1001}, 422, "invalid_request"),
        ({**base, "notes": "a\u0000b"}, 422, "invalid_request"),
        ({**base, "notes": "bell \u0007"}, 422, "invalid_request"),
        ({**base, "service_id": "walk\u0000"}, 422, "invalid_request"),
        ({**base, "pet_ids": ["rex\u0000"]}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        response = await booking_portal.http.post("/v1/portal/job-requests", headers=headers, json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body


async def test_a_month_or_day_outside_the_calendar_is_refused_with_a_code(booking_portal: Any) -> None:
    headers = booking_portal.client(booking_portal.ann)
    for path, params in (
        ("/v1/portal/schedule", {"month": "0000-01"}),
        ("/v1/portal/schedule", {"month": "9999-12"}),
        ("/v1/portal/schedule", {"month": "\u0661\u0669\u0669\u0669-01"}),  # Arabic-Indic digits
        ("/v1/portal/schedule/9999-12-31", {}),
    ):
        response = await booking_portal.http.get(path, params=params, headers=headers)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_reference"), (path, params)


async def test_a_cancel_reason_with_control_characters_is_refused_and_nothing_changes(booking_portal: Any) -> None:
    job_request = await submit(booking_portal)
    headers = booking_portal.client(booking_portal.ann)
    refused = await booking_portal.http.post(
        f"/v1/portal/job-requests/{job_request['id']}/cancel", headers=headers, json={"reason": "oops\u0000"}
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
    still = await booking_portal.http.get(f"/v1/portal/job-requests/{job_request['id']}", headers=headers)
    assert still.json()["status"] == "requested"
    ok = await booking_portal.http.post(
        f"/v1/portal/job-requests/{job_request['id']}/cancel", headers=headers, json={"reason": "Line one\nline two"}
    )
    assert ok.status_code == 200 and ok.json()["cancel_reason"] == "Line one\nline two"


async def test_an_overlong_correlation_id_is_replaced_by_a_generated_one_that_the_event_carries(
    booking_portal: Any,
) -> None:
    job_request = await submit(booking_portal)
    cancelled = await booking_portal.http.post(
        f"/v1/portal/job-requests/{job_request['id']}/cancel",
        headers={**booking_portal.client(booking_portal.ann), "X-Correlation-ID": "c" * 300},
    )
    assert cancelled.status_code == 200
    generated = cancelled.headers["X-Correlation-ID"]
    assert generated and generated != "c" * 300 and len(generated) <= 128
    events = await eventually(lambda: booking_portal.events_of(job_request["id"], "job_request.cancelled"))
    assert [e["correlationid"] for e in events] == [generated]


async def test_a_bad_month_and_a_huge_body_are_refused(booking_portal: Any) -> None:
    headers = booking_portal.client(booking_portal.ann)
    month = await booking_portal.http.get("/v1/portal/schedule", params={"month": "2026-13"}, headers=headers)
    assert month.status_code == 422 and month.json()["code"] == "invalid_reference"
    huge = await booking_portal.http.post(
        "/v1/portal/job-requests/x/cancel",
        headers={**headers, "Content-Type": "application/json"},
        content=b"{" + b" " * 70_000 + b"}",
    )
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"


async def test_a_huge_body_sent_in_chunks_without_a_length_is_refused_too(booking_portal: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"notes": "'
        for _ in range(70):
            yield b"x" * 1000
        yield b'"}'

    huge = await booking_portal.http.post(
        "/v1/portal/job-requests",
        headers={**booking_portal.client(booking_portal.ann), "Content-Type": "application/json"},
        content=chunks(),
    )
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"


async def test_racing_cancel_and_schedule_exactly_one_wins_and_the_loser_gets_409(booking_portal: Any) -> None:
    import asyncio

    requests = [await submit(booking_portal) for _ in range(30)]

    async def race(request_id: str) -> tuple[int, int]:
        cancel, schedule = await asyncio.gather(
            booking_portal.http.post(
                f"/v1/portal/job-requests/{request_id}/cancel", headers=booking_portal.client(booking_portal.ann)
            ),
            booking_portal.http.post(f"/v1/admin/job-requests/{request_id}/schedule", headers=booking_portal.admin()),
        )
        return cancel.status_code, schedule.status_code

    results = await asyncio.gather(*(race(r["id"]) for r in requests))
    for (cancel, schedule), request in zip(results, requests, strict=True):
        assert sorted((cancel, schedule)) == [200, 409], request["id"]
        final = await booking_portal.http.get(
            f"/v1/portal/job-requests/{request['id']}", headers=booking_portal.client(booking_portal.ann)
        )
        assert final.json()["status"] == ("cancelled" if cancel == 200 else "scheduled")


def _today_in_london() -> str:
    """Today where the test business is (Europe/London)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/London")).date().isoformat()
