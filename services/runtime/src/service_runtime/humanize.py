"""Dates and times for people, in the business timezone (one wording for emails, notices and logs)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def day_and_time(day: date, start: time) -> str:
    """`Tue 3 Dec 2026, 09:00` (a wall-clock time, already in the business timezone)."""
    return f"{day:%a} {day.day} {day:%b %Y}, {start:%H:%M}"


def instant(moment: datetime, timezone: str) -> str:
    """`Wed 25 Nov 2026 at 16:20:05 GMT` for a UTC instant shown in the business timezone."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local:%a} {local.day} {local:%b %Y} at {local:%H:%M:%S} {local:%Z}"
