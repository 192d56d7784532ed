"""Counting the effects of cancellations where they live: the SMTP server's mail, notifier's and audit's databases."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from tests.support.mailpit import Mailpit


@dataclass(frozen=True)
class Effects:
    """Per cancellation event id: emails received, notices stored, log entries stored."""

    emails: Counter[str]
    notices: Counter[str]
    logs: Counter[str]

    def missing(self, event_ids: set[str]) -> dict[str, set[str]]:
        return {
            "emails": event_ids - set(self.emails),
            "notices": event_ids - set(self.notices),
            "logs": event_ids - set(self.logs),
        }

    def complete(self, event_ids: set[str]) -> bool:
        return not any(self.missing(event_ids).values())


async def cancellation_event_ids(
    mongo: AsyncMongoClient[dict[str, Any]], booking_db: str, request_ids: list[str]
) -> set[str]:
    """The id of the one cancellation event stored for each request."""
    docs = (
        await mongo[booking_db]["job_request_events"]
        .find({"stream_id": {"$in": request_ids}, "type": "job_request.cancelled"}, {"_id": 1})
        .to_list()
    )
    return {d["_id"] for d in docs}


async def count_effects(
    mongo: AsyncMongoClient[dict[str, Any]], mailpit: Mailpit, *, admin_email: str, notifier_db: str, audit_db: str
) -> Effects:
    """Everything the cancellations of one business caused, counted per event id."""
    mails = await mailpit.search_all(f"cc:{admin_email}")
    emails = Counter(m["MessageID"].split(".", 1)[0] for m in mails)
    notices = Counter(d["event_id"] for d in await mongo[notifier_db]["notices"].find({}, {"event_id": 1}).to_list())
    logs = Counter(
        d["_id"]
        for d in await mongo[audit_db]["client_log_entries"]
        .find({"type": "job_request.cancelled"}, {"_id": 1})
        .to_list()
    )
    return Effects(emails=emails, notices=notices, logs=logs)
