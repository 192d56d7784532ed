"""Demo data: one business, two clients with pets, three service types, requests this month and next (idempotent)."""

from __future__ import annotations

import calendar
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain import Actor
from booking.handlers import (
    Deps,
    ScheduleJobRequest,
    SubmitJobRequest,
    schedule_job_request,
    submit_job_request,
    utc_now,
)
from service_runtime.auth import Principal, TokenCodec

BUSINESS = {
    "_id": "demo-business",
    "name": "Happy Paws Pet Sitting",
    "admin_email": "admin@happypaws.example",
    "timezone": "Europe/London",
}
ADMIN_ID = "demo-admin"
CLIENTS = [
    {"_id": "demo-client-ann", "business_id": "demo-business", "name": "Ann Example", "email": "ann@client.example"},
    {"_id": "demo-client-ben", "business_id": "demo-business", "name": "Ben Example", "email": "ben@client.example"},
]
PETS = [
    {
        "_id": "demo-pet-rex",
        "client_id": "demo-client-ann",
        "business_id": "demo-business",
        "name": "Rex",
        "species": "dog",
    },
    {
        "_id": "demo-pet-mia",
        "client_id": "demo-client-ann",
        "business_id": "demo-business",
        "name": "Mia",
        "species": "cat",
    },
    {
        "_id": "demo-pet-bo",
        "client_id": "demo-client-ben",
        "business_id": "demo-business",
        "name": "Bo",
        "species": "dog",
    },
]
SERVICES = [
    {"_id": "demo-dog-walk-30", "business_id": "demo-business", "name": "Dog Walk 30 min", "duration_minutes": 30},
    {"_id": "demo-cat-visit-20", "business_id": "demo-business", "name": "Cat Visit 20 min", "duration_minutes": 20},
    {"_id": "demo-overnight", "business_id": "demo-business", "name": "Overnight Stay", "duration_minutes": 720},
]
# (client, service, pets, month offset, day offset from the first open day, start, schedule it?)
JOBS: list[tuple[str, str, tuple[str, ...], int, int, time, bool]] = [
    ("demo-client-ann", "demo-dog-walk-30", ("demo-pet-rex",), 0, 1, time(9, 0), False),
    ("demo-client-ann", "demo-cat-visit-20", ("demo-pet-mia",), 0, 1, time(17, 30), True),
    ("demo-client-ann", "demo-dog-walk-30", ("demo-pet-rex",), 0, 2, time(12, 0), True),
    ("demo-client-ann", "demo-overnight", ("demo-pet-rex", "demo-pet-mia"), 1, 3, time(19, 0), False),
    ("demo-client-ann", "demo-dog-walk-30", ("demo-pet-rex",), 1, 8, time(9, 0), True),
    ("demo-client-ben", "demo-dog-walk-30", ("demo-pet-bo",), 0, 1, time(8, 0), False),
    ("demo-client-ben", "demo-dog-walk-30", ("demo-pet-bo",), 1, 4, time(10, 0), True),
    ("demo-client-ben", "demo-overnight", ("demo-pet-bo",), 1, 12, time(20, 0), False),
]


def _job_day(today: date, month_offset: int, day_offset: int) -> date:
    # This month: days from tomorrow on, held inside the month (on its last day, tomorrow is next month's first:
    # a job today could already be past, and a submission for a time that has passed is refused); next month:
    # from its first day.
    if month_offset == 0:
        last = date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
        return max(min(today + timedelta(days=day_offset), last), today + timedelta(days=1))
    first = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return first + timedelta(days=day_offset - 1)


async def seed_demo(*, deps: Deps, tokens: TokenCodec) -> dict[str, Any]:
    """Create the demo business and its data; running it again changes nothing within the same month."""
    await deps.catalogue.upsert("businesses", BUSINESS)
    for collection, docs in (("clients", CLIENTS), ("pets", PETS), ("services", SERVICES)):
        for doc in docs:
            await deps.catalogue.upsert(collection, doc)
    today = utc_now().astimezone(ZoneInfo(BUSINESS["timezone"])).date()
    admin = Actor("admin", ADMIN_ID)
    for n, (client_id, service_id, pet_ids, month_offset, day_offset, start, scheduled) in enumerate(JOBS):
        on = _job_day(today, month_offset, day_offset)
        request_id = f"demo-{on:%Y%m}-{n}"
        cmd = SubmitJobRequest(BUSINESS["_id"], client_id, service_id, on, start, pet_ids, job_request_id=request_id)
        await submit_job_request(cmd, deps=deps, correlation_id="seed-demo")
        if scheduled:
            await schedule_job_request(
                ScheduleJobRequest(request_id, BUSINESS["_id"], admin), deps=deps, correlation_id="seed-demo"
            )
    return {
        "business_id": BUSINESS["_id"],
        "admin_token": tokens.issue(Principal("admin", ADMIN_ID, BUSINESS["_id"])),
        "clients": [
            {"id": c["_id"], "name": c["name"], "token": tokens.issue(Principal("client", c["_id"], BUSINESS["_id"]))}
            for c in CLIENTS
        ],
    }
