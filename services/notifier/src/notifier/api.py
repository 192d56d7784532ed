"""The admin's HOME notices."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from notifier.store import Notices
from service_runtime.auth import CurrentAdmin
from service_runtime.errors import NotFound

router = APIRouter(prefix="/v1/admin", tags=["notices"])


class NoticeNotFound(NotFound):
    code = "notice_not_found"


class ActorOut(BaseModel):
    kind: Literal["client", "admin"]
    id: str


class ClientOut(BaseModel):
    id: str
    name: str


class NoticeOut(BaseModel):
    """A notice on the HOME screen."""

    id: str
    kind: str
    title: str
    message: str
    job_request_id: str
    client: ClientOut
    service: str
    requested_date: date
    requested_start_time: str
    cancelled_at: datetime
    cancelled_by: ActorOut
    reason: str | None
    timezone: str
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> NoticeOut:
        return cls.model_validate({**doc, "id": doc["_id"]})


class NoticeList(BaseModel):
    unread_count: int
    notices: list[NoticeOut]


def _notices(request: Request) -> Notices:
    notices: Notices = request.app.state.notices
    return notices


@router.get("/notices")
async def list_notices(
    admin: CurrentAdmin,
    request: Request,
    unread: Annotated[bool, Query(description="Only notices not marked as read.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NoticeList:
    """The business's notices, newest first, with the unread count."""
    notices = _notices(request)
    docs = await notices.list(admin.business_id, unread_only=unread, limit=limit)
    return NoticeList(
        unread_count=await notices.unread_count(admin.business_id), notices=[NoticeOut.of(d) for d in docs]
    )


@router.post("/notices/{notice_id}/read")
async def mark_read(
    notice_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$")], admin: CurrentAdmin, request: Request
) -> NoticeOut:
    """Mark a notice as read (a repeat keeps the first time)."""
    doc = await _notices(request).mark_read(admin.business_id, notice_id, at=datetime.now(UTC))
    if doc is None:
        raise NoticeNotFound("No such notice.")
    return NoticeOut.of(doc)
