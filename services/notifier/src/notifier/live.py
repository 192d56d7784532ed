"""The admin HOME's live feed: new notices as Server-Sent Events, resumable with `Last-Event-ID`.

Each stream polls the notices collection (an indexed query per poll), so it sees what any notifier replica
inserted. A notice's `created_at` comes from the replica that inserted it, and a notice stamped earlier can
become visible later than one stamped after it (clock skew, a slow insert); so each poll re-reads a
lookback window behind the newest notice sent and skips the ids already sent. The SSE id is the notice id;
a reconnect names the last one it got and the stream replays from that notice's `created_at` minus the
lookback. A notice may so be sent twice, never missed: the page keys notices by id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pymongo.errors import PyMongoError

from notifier.api import NoticeOut
from notifier.store import Notices
from service_runtime.auth import CurrentAdmin

log = structlog.get_logger(__name__)

RECONNECT_MS = 1000
BATCH = 1000


@dataclass(frozen=True)
class StreamTiming:
    """How often a stream polls, how far back each poll looks, and how long one stream lasts."""

    poll_seconds: float
    lookback: timedelta
    lifetime_seconds: float


@dataclass
class FeedCursor:
    """What one stream has sent: the newest `created_at` sent and the ids sent within the lookback window."""

    high_water: datetime
    lookback: timedelta
    sent: dict[str, datetime] = field(default_factory=dict)

    @property
    def since(self) -> datetime:
        return self.high_water - self.lookback

    def fresh(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The notices among `docs` not sent yet, marked as sent."""
        new = [d for d in docs if d["_id"] not in self.sent]
        for doc in new:
            self.sent[doc["_id"]] = doc["created_at"]
            self.high_water = max(self.high_water, doc["created_at"])
        floor = self.since
        self.sent = {k: at for k, at in self.sent.items() if at >= floor}
        return new


def notice_stream_router(timing: StreamTiming) -> APIRouter:
    """`GET /v1/admin/notices/stream`: the live HOME feed of the admin's business."""
    router = APIRouter(prefix="/v1/admin", tags=["notices"])

    @router.get("/notices/stream", response_class=EventSourceResponse)
    async def notice_stream(
        admin: CurrentAdmin,
        request: Request,
        last_event_id: Annotated[str | None, Header(max_length=64, description="The last notice id received.")] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """New notices as `notice` events (id = notice id); the stream ends after a while and the client
        reconnects with `Last-Event-ID`, so a restarting replica or an expired token never holds it open."""
        notices: Notices = request.app.state.notices
        cursor = await _cursor(notices, admin.business_id, last_event_id, timing.lookback)
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + timing.lifetime_seconds
        yield ServerSentEvent(comment="connected", retry=RECONNECT_MS)
        while True:
            try:
                docs = await notices.created_since(admin.business_id, cursor.since, limit=BATCH)
            except PyMongoError as exc:
                log.warning("notice_stream.read_failed", error=repr(exc))
                return
            for doc in cursor.fresh(docs):
                yield ServerSentEvent(event="notice", id=doc["_id"], data=NoticeOut.of(doc).model_dump(mode="json"))
            if loop.time() >= ends_at:
                return
            await asyncio.sleep(timing.poll_seconds)

    return router


async def _cursor(notices: Notices, business_id: str, last_event_id: str | None, lookback: timedelta) -> FeedCursor:
    last = await notices.get(business_id, last_event_id) if last_event_id else None
    if last is None:
        return FeedCursor(high_water=datetime.now(UTC), lookback=lookback)
    return FeedCursor(high_water=last["created_at"], lookback=lookback, sent={last["_id"]: last["created_at"]})
