from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from notifier.store import SentEmails
from tests.support.ids import unique

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=30)
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(mongo: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    database = mongo[unique("sent_emails").replace("-", "_")]
    yield database
    await mongo.drop_database(database.name)


@pytest.fixture
def sent(db: AsyncDatabase[dict[str, Any]]) -> SentEmails:
    return SentEmails(db, lease=LEASE)


def a_key() -> str:
    return SentEmails.key("notifier.cancellation_email", unique("event"), "Client@Example.com")


async def test_one_of_many_concurrent_deliveries_claims_an_email_and_the_others_are_told_it_is_busy(
    sent: SentEmails,
) -> None:
    key = a_key()
    answers = await asyncio.gather(*(sent.claim(key, now=T0) for _ in range(12)))
    assert sorted(answers) == ["busy"] * 11 + ["claimed"]


async def test_once_the_email_is_recorded_as_sent_every_later_delivery_is_told_so_even_after_the_lease(
    sent: SentEmails,
) -> None:
    key = a_key()
    assert await sent.claim(key, now=T0) == "claimed"
    await sent.mark_sent(key, message_id="<m@example>", at=T0 + timedelta(seconds=1))
    await sent.mark_sent(key, message_id="<m@example>", at=T0 + timedelta(seconds=2))  # a repeat is no error
    assert await sent.was_sent(key)
    assert await sent.claim(key, now=T0 + timedelta(seconds=5)) == "sent"
    assert await sent.claim(key, now=T0 + LEASE * 3) == "sent"


async def test_a_claim_older_than_the_lease_is_taken_over_and_then_fresh_again(sent: SentEmails) -> None:
    key = a_key()
    assert await sent.claim(key, now=T0) == "claimed"  # its holder dies mid-send
    assert await sent.claim(key, now=T0 + LEASE - timedelta(seconds=1)) == "busy"
    later = T0 + LEASE + timedelta(seconds=1)
    assert await sent.claim(key, now=later) == "claimed"
    assert await sent.claim(key, now=later + timedelta(seconds=1)) == "busy"  # the new holder's lease is fresh


async def test_of_many_deliveries_racing_to_take_over_one_expired_claim_exactly_one_wins(sent: SentEmails) -> None:
    # design.md: on FerretDB v1 an update is read-modify-write, so two takers could both "win" an update; the
    # takeover must rest on a unique insert. Many rounds, each a fresh expired claim and 8 racing deliveries.
    for _ in range(15):
        key = a_key()
        assert await sent.claim(key, now=T0) == "claimed"  # its holder dies mid-send
        later = T0 + LEASE + timedelta(seconds=1)
        answers = await asyncio.gather(*(sent.claim(key, now=later) for _ in range(8)))
        assert sorted(answers) == ["busy"] * 7 + ["claimed"]


async def test_a_takeover_whose_taker_died_before_moving_the_claim_is_itself_taken_over_after_the_lease(
    sent: SentEmails, db: AsyncDatabase[dict[str, Any]]
) -> None:
    key = a_key()
    assert await sent.claim(key, now=T0) == "claimed"  # its holder dies mid-send
    took_at = T0 + LEASE + timedelta(seconds=1)
    # A delivery inserted the takeover and died before it moved the claim's time.
    await db["email_claim_takeovers"].insert_one(
        {"_id": f"{key}@{T0.isoformat()}#0", "claim": key, "taken_at": took_at}
    )
    assert await sent.claim(key, now=took_at + timedelta(seconds=1)) == "busy"  # it may still be at it
    assert await sent.claim(key, now=took_at + LEASE + timedelta(seconds=1)) == "claimed"


async def test_a_released_claim_can_be_claimed_again_at_once(sent: SentEmails) -> None:
    key = a_key()
    assert await sent.claim(key, now=T0) == "claimed"
    await sent.release(key, claimed_at=T0)  # the send failed
    assert await sent.claim(key, now=T0 + timedelta(seconds=1)) == "claimed"


async def test_a_late_release_by_the_first_holder_leaves_the_claim_that_took_over_and_sent_alone(
    sent: SentEmails,
) -> None:
    key = a_key()
    assert await sent.claim(key, now=T0) == "claimed"  # A: its server hangs past the lease
    taken_at = T0 + LEASE + timedelta(seconds=1)
    assert await sent.claim(key, now=taken_at) == "claimed"  # B takes over and sends
    await sent.mark_sent(key, message_id="<b@example>", at=taken_at)
    await sent.release(key, claimed_at=T0)  # A's send fails at last: it gives back only what it held
    assert await sent.claim(key, now=taken_at + timedelta(seconds=1)) == "sent"


async def test_emails_of_the_earlier_layout_are_adopted_once_sent_stays_sent_and_an_unfinished_one_stays_claimed(
    sent: SentEmails, db: AsyncDatabase[dict[str, Any]]
) -> None:
    done, unfinished, current = a_key(), a_key(), a_key()
    await db["sent_emails"].insert_many(
        [
            {"_id": done, "status": "sent", "claimed_at": T0, "message_id": "<old@example>", "sent_at": T0},
            {"_id": unfinished, "status": "sending", "claimed_at": T0},
        ]
    )
    assert await sent.claim(current, now=T0) == "claimed"
    await sent.mark_sent(current, message_id="<new@example>", at=T0)

    assert await sent.adopt_earlier_layout() == 2
    assert await sent.adopt_earlier_layout() == 0  # the next start finds the marker

    assert await sent.claim(done, now=T0 + LEASE * 3) == "sent"
    assert await sent.claim(unfinished, now=T0 + timedelta(seconds=1)) == "busy"  # its sender may still be at it
    assert await sent.claim(unfinished, now=T0 + LEASE + timedelta(seconds=1)) == "claimed"  # it died: take over
    assert await sent.claim(current, now=T0 + timedelta(seconds=2)) == "sent"
    assert await db["sent_emails"].count_documents({"status": {"$exists": True}}) == 0
