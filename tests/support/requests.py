"""A job request for booking's unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from booking import domain
from booking.domain import Actor

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
CLIENT = Actor("client", "c1")
ADMIN = Actor("admin", "a1")


def a_request() -> domain.JobRequest:
    """A submitted request for a dog walk on Thu 3 Dec 2026 at 09:00 (London)."""
    return domain.submit(
        id="jr1",
        client=domain.Client("c1", "Ann", "ann@example.com"),
        business=domain.Business("b1", "Happy Paws", "admin@example.com", "Europe/London"),
        service=domain.Service("s1", "Dog Walk 30 min", 30),
        pets=(domain.Pet("p1", "Rex", "dog"),),
        on=date(2026, 12, 3),
        at=time(9, 0),
        notes="",
        by=CLIENT,
        now=NOW,
    )
