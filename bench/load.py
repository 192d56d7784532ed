"""Open-loop cancellations at a fixed offered rate, and the timing of every effect they caused."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from tests.support.mailpit import Mailpit

BODY = b'{"reason": "bench"}'


@dataclass
class Answer:
    request_id: str
    scheduled: float  # wall clock (time.time) when the open-loop schedule meant to send it
    answered: float = 0.0
    status: int = 0
    error: str = ""

    @property
    def latency(self) -> float:
        """From the scheduled send (not the actual one: a late client must not hide queueing) to the answer."""
        return self.answered - self.scheduled


async def offer(
    http: aiohttp.ClientSession, path: str, ids: list[str], rate: float, headers: dict[str, str]
) -> list[Answer]:
    """POST `path` for every id at `rate` per second, each on its own task, without waiting for answers."""
    answers = [Answer(i, 0.0) for i in ids]
    headers = {**headers, "Content-Type": "application/json"}
    start = time.time() + 0.05

    async def one(answer: Answer) -> None:
        try:
            async with http.post(path.format(id=answer.request_id), headers=headers, data=BODY) as response:
                await response.read()
                answer.status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer.status = -1
            answer.error = type(exc).__name__
        answer.answered = time.time()

    tasks = []
    for n, answer in enumerate(answers):
        answer.scheduled = start + n / rate
        delay = answer.scheduled - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(answer)))
    await asyncio.gather(*tasks)
    return answers


@dataclass
class EffectTimes:
    """Per job request id: when each effect was stored (wall clock, seconds), and how many times it exists."""

    email: dict[str, float] = field(default_factory=dict)
    notice: dict[str, float] = field(default_factory=dict)
    log: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


async def collect_effects(
    mongo: AsyncMongoClient[dict[str, Any]],
    mailpit: Mailpit,
    *,
    business_id: str,
    admin_email: str,
    notifier_db: str,
    audit_db: str,
) -> EffectTimes:
    """Every email (Mailpit's receive time), notice (`created_at`) and log entry (`logged_at`) per job request."""
    times = EffectTimes()
    request_of_event: dict[str, str] = {}
    notices: Counter[str] = Counter()
    found = mongo[notifier_db]["notices"].find(
        {"business_id": business_id}, {"job_request_id": 1, "event_id": 1, "created_at": 1}
    )
    for doc in await found.to_list():
        notices[doc["job_request_id"]] += 1
        times.notice[doc["job_request_id"]] = _ts(doc["created_at"])
        request_of_event[doc["event_id"]] = doc["job_request_id"]
    logs: Counter[str] = Counter()
    entries = mongo[audit_db]["client_log_entries"].find(
        {"business_id": business_id, "type": "job_request.cancelled"}, {"job_request_id": 1, "logged_at": 1}
    )
    for doc in await entries.to_list():
        logs[doc["job_request_id"]] += 1
        times.log[doc["job_request_id"]] = _ts(doc["logged_at"])
        request_of_event[doc["_id"]] = doc["job_request_id"]  # a log entry's id is its event id
    emails: Counter[str] = Counter()
    for mail in await mailpit.search_all(f"cc:{admin_email}"):
        # The Message-ID starts with the event id (notifier.emails.message_id).
        event_id = str(mail["MessageID"]).split(".", 1)[0]
        request_id = request_of_event.get(event_id, f"unknown-event:{event_id}")
        emails[request_id] += 1
        times.email[request_id] = _ts(mail["Created"])
    times.counts = {"email": emails, "notice": notices, "log": logs}
    return times


async def wait_for_effects(
    expected: set[str], read: Any, *, timeout: float, poll: float = 0.5
) -> tuple[EffectTimes, bool]:
    """Poll until every expected request has all three effects, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        times: EffectTimes = await read()
        done = all(expected <= set(getattr(times, kind)) for kind in ("email", "notice", "log"))
        if done or time.monotonic() > deadline:
            return times, done
        await asyncio.sleep(poll)


def exactly_once(
    expected: set[str], times: EffectTimes, *, unanswered: set[str] | frozenset[str] = frozenset()
) -> dict[str, dict[str, int]]:
    """Problems per effect kind: missing (0) or duplicated (>1) request ids, and effects of unknown requests.

    A cancellation that got no answer (client timeout) may or may not have happened: 0 or 1 is right for it.
    """
    problems: dict[str, dict[str, int]] = {}
    for kind, counts in times.counts.items():
        bad = {
            rid: counts.get(rid, 0)
            for rid in expected
            if counts.get(rid, 0) != 1 and not (rid in unanswered and counts.get(rid, 0) == 0)
        }
        bad.update({rid: n for rid, n in counts.items() if rid not in expected})
        if bad:
            problems[kind] = bad
    return problems
