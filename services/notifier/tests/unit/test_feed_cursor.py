from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.live import FeedCursor

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def notice(notice_id: str, seconds: float) -> dict[str, object]:
    return {"_id": notice_id, "created_at": T0 + timedelta(seconds=seconds)}


def test_a_notice_already_sent_is_not_sent_again() -> None:
    cursor = FeedCursor(high_water=T0, lookback=timedelta(seconds=10))
    assert [d["_id"] for d in cursor.fresh([notice("a", 1), notice("b", 2)])] == ["a", "b"]
    assert cursor.fresh([notice("a", 1), notice("b", 2)]) == []


def test_a_late_notice_within_the_lookback_is_sent_and_the_window_follows_the_newest() -> None:
    cursor = FeedCursor(high_water=T0, lookback=timedelta(seconds=10))
    cursor.fresh([notice("new", 30)])
    assert cursor.since == T0 + timedelta(seconds=20)
    assert [d["_id"] for d in cursor.fresh([notice("late", 25), notice("new", 30)])] == ["late"]


def test_ids_older_than_the_window_are_forgotten() -> None:
    cursor = FeedCursor(high_water=T0, lookback=timedelta(seconds=10))
    cursor.fresh([notice("old", 1)])
    cursor.fresh([notice("new", 60)])
    assert set(cursor.sent) == {"new"}
