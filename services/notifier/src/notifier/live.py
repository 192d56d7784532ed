"""The admin HOME's live feed: new notices as Server-Sent Events, resumable with `Last-Event-ID`.

Each stream polls the notices collection (an indexed query per poll), so it sees what any notifier replica
inserted. A notice's `created_at` comes from the replica that inserted it, and a notice stamped earlier can
become visible later than one stamped after it (clock skew, a slow insert); so each poll re-reads a
lookback window behind the newest notice sent and skips the ids already sent. The SSE id is the notice id;
a reconnect names the last one it got and the stream replays from that notice's `created_at` minus the
lookback. A notice may so be sent twice, never missed: the page keys notices by id. A poll reads the window page
by page (`batch` notices each), so a burst bigger than a page does not hold the feed on its first page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pymongo.errors import PyMongoError

from notifier.api import NoticeOut
from notifier.store import Notices
from service_runtime.auth import CurrentAdmin
from service_runtime.errors import DomainError

log = structlog.get_logger(__name__)

RECONNECT_MS = 1000


class TooManyStreams(DomainError):
    code = "too_many_streams"


@dataclass(frozen=True)
class StreamTiming:
    """How often a stream polls, how far back each poll looks, how long one stream lasts, how many notices one read
    takes, and how many streams one business may hold open on one replica."""

    poll_seconds: float
    lookback: timedelta
    lifetime_seconds: float
    batch: int = 1000
    streams_per_business: int = 20


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
    open_streams: dict[str, int] = {}

    async def stream_slot(admin: CurrentAdmin) -> AsyncIterator[None]:
        # Each stream polls the database every `poll_seconds`: a bound per business keeps one token from
        # multiplying that (a HOME page holds one stream; a few tabs and admins fit well within it).
        held = open_streams.get(admin.business_id, 0)
        if held >= timing.streams_per_business:
            raise TooManyStreams(
                f"This business already has {held} live feeds open here; close some tabs or try again later."
            )
        open_streams[admin.business_id] = held + 1
        try:
            yield
        finally:
            open_streams[admin.business_id] -= 1
            if not open_streams[admin.business_id]:
                del open_streams[admin.business_id]

    @router.get("/notices/stream", response_class=EventSourceResponse, dependencies=[Depends(stream_slot)])
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
                async for doc in _poll(notices, admin.business_id, cursor, batch=timing.batch):
                    yield ServerSentEvent(event="notice", id=doc["_id"], data=NoticeOut.of(doc).model_dump(mode="json"))
            except PyMongoError as exc:
                log.warning("notice_stream.read_failed", error=repr(exc))
                return
            if loop.time() >= ends_at:
                return
            await asyncio.sleep(timing.poll_seconds)

    return router


async def _poll(notices: Notices, business_id: str, cursor: FeedCursor, *, batch: int) -> AsyncIterator[dict[str, Any]]:
    """The notices of the window not sent yet, read page by page in (created_at, id) order."""
    since, after = cursor.since, None
    while True:
        docs = await notices.created_since(business_id, since, after=after, limit=batch)
        for doc in cursor.fresh(docs):
            yield doc
        if len(docs) < batch:
            return
        after = (docs[-1]["created_at"], docs[-1]["_id"])


async def _cursor(notices: Notices, business_id: str, last_event_id: str | None, lookback: timedelta) -> FeedCursor:
    last = await notices.get(business_id, last_event_id) if last_event_id else None
    if last is None:
        return FeedCursor(high_water=datetime.now(UTC), lookback=lookback)
    return FeedCursor(high_water=last["created_at"], lookback=lookback, sent={last["_id"]: last["created_at"]})
