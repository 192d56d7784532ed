"""The demo data's days: never today or before, whatever day of the month the demo is seeded."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from booking.seed import JOBS, _job_day


@pytest.mark.parametrize("today", [date(2026, 11, 26), date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 31)])
def test_every_demo_job_is_after_today_even_on_the_last_days_of_a_month(today: date) -> None:
    days = [_job_day(today, month_offset, day_offset) for _, _, _, month_offset, day_offset, _, _ in JOBS]
    assert min(days) >= today + timedelta(days=1), days
