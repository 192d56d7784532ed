from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

import pytest

from booking import domain
from booking.domain import Business, JobRequest
from tests.support.ids import unique
from tests.support.requests import ADMIN, CLIENT, NOW, a_request

pytestmark = pytest.mark.integration


async def page_through(portal: Any, headers: dict[str, str], status: str, limit: int) -> list[str]:
    """Every id of the list, a page at a time, each page starting past the last request of the one before."""
    seen: list[str] = []
    params: dict[str, Any] = {"status": status, "limit": limit}
    while True:
        response = await portal.http.get("/v1/admin/job-requests", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert not {r["id"] for r in page} & set(seen), f"a page repeats requests: {params}"
        seen += [r["id"] for r in page]
        if len(page) < limit:
            return seen
        last = page[-1]
        if status == "cancelled":
            params = {"status": status, "limit": limit, "before": last["cancelled_at"], "before_id": last["id"]}
        else:
            after = f"{last['date']}T{last['start_time']}"
            params = {"status": status, "limit": limit, "after": after, "after_id": last["id"]}


async def test_an_admin_pages_through_each_status_and_gets_every_request_once_in_order(booking_portal: Any) -> None:
    business_id = unique("biz")
    business = Business(business_id, "Happy Paws", "admin@example.com", "Europe/London")
    # Several requests share a day and a start time, several cancellations an instant: ids break those ties.
    requests = [
        replace(
            a_request(),
            id=unique("jr"),
            business=business,
            date=date(2031, 3, 1) + timedelta(days=i // 6),
            start_time=time(9 + 5 * (i % 2), 30),
        )
        for i in range(60)
    ]
    requested, scheduled, cancelled = requests[:25], requests[25:37], requests[37:]
    scheduled = [domain.schedule(r, by=ADMIN, now=NOW) for r in scheduled]
    cancelled = [
        domain.cancel(r, by=CLIENT, now=NOW + timedelta(minutes=n // 4), reason=None) for n, r in enumerate(cancelled)
    ]
    stored = requested + scheduled + cancelled
    for request in random.sample(stored, len(stored)):
        await booking_portal.projection.save(request)
    headers = booking_portal.auth("admin", "boss", business_id)

    def soonest_first(some: list[JobRequest]) -> list[str]:
        return [r.id for r in sorted(some, key=lambda r: (r.date, r.start_time, r.id))]

    def newest_first(some: list[JobRequest]) -> list[str]:
        return [r.id for r in sorted(some, key=lambda r: (r.cancelled_at, r.id), reverse=True)]

    assert await page_through(booking_portal, headers, "requested", 10) == soonest_first(requested)
    assert await page_through(booking_portal, headers, "scheduled", 4) == soonest_first(scheduled)  # ends full
    assert await page_through(booking_portal, headers, "cancelled", 5) == newest_first(cancelled)
    assert await page_through(booking_portal, headers, "requested", 500) == soonest_first(requested)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "requested", "before": "2031-03-01T09:30:00Z", "before_id": "jr-1"}, "invalid_reference"),
        ({"status": "cancelled", "after": "2031-03-01T09:30", "after_id": "jr-1"}, "invalid_reference"),
        ({"status": "cancelled", "before_id": "jr-1"}, "invalid_reference"),
        ({"status": "requested", "after_id": "jr-1"}, "invalid_reference"),
        ({"status": "requested", "after": "2031-03-01T09:30:15"}, "invalid_request"),
        ({"status": "requested", "after": "2031-03-01T09:30+01:00"}, "invalid_request"),
        ({"status": "requested", "after": "soon"}, "invalid_request"),
        ({"status": "cancelled", "before": "2031-03-01T09:30"}, "invalid_request"),
        ({"status": "cancelled", "before": "2031-03-01T09:30:00Z", "before_id": "jr 1"}, "invalid_request"),
        ({"status": "requested", "after": "2031-03-01T09:30", "after_id": "x" * 65}, "invalid_request"),
        ({"status": "requested", "limit": 501}, "invalid_request"),
        ({"status": "cancelled", "before": "0001-01-01T00:00:00+00:01"}, "invalid_request"),  # before UTC's 1 AD
        ({"status": "cancelled", "before": "9999-12-31T23:59:59-01:00"}, "invalid_request"),  # after its 9999
    ],
)
async def test_a_page_start_that_does_not_fit_the_list_is_refused_with_a_code(
    booking_portal: Any, params: dict[str, str], code: str
) -> None:
    response = await booking_portal.http.get("/v1/admin/job-requests", headers=booking_portal.admin(), params=params)
    assert (response.status_code, response.json()["code"]) == (422, code), response.text
    if code == "invalid_request":
        assert [e["field"].split(".")[0] for e in response.json()["errors"]] == ["query"]
