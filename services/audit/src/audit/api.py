"""A client's LOGS, for the admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from audit.store import ClientLogs
from service_runtime.auth import CurrentAdmin
from service_runtime.errors import InvalidReference
from service_runtime.web import UtcInstant

router = APIRouter(prefix="/v1/admin", tags=["logs"])


class ActorOut(BaseModel):
    kind: Literal["client", "admin"]
    id: str


class LogEntryOut(BaseModel):
    """One LOGS line: when the change happened (UTC; `timezone` is the business's), what, and who."""

    id: str
    type: str
    occurred_at: datetime
    timezone: str
    actor: ActorOut
    job_request_id: str
    summary: str

    @classmethod
    def of(cls, doc: dict[str, Any]) -> LogEntryOut:
        return cls.model_validate({**doc, "id": doc["_id"]})


@router.get("/clients/{client_id}/logs")
async def client_logs(
    client_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    admin: CurrentAdmin,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        UtcInstant | None, Query(description="Older pages: the `occurred_at` of the last entry you have.")
    ] = None,
    before_id: Annotated[
        str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="With `before`: that entry's id.")
    ] = None,
) -> list[LogEntryOut]:
    """The client's log entries, newest first; `before` (and `before_id`) page back from the last entry you have."""
    if before_id is not None and before is None:
        raise InvalidReference("before_id needs before: the occurred_at of the same entry.")
    logs: ClientLogs = request.app.state.logs
    after = (before, before_id) if before is not None else None
    docs = await logs.of_client(admin.business_id, client_id, limit=limit, before=after)
    return [LogEntryOut.of(d) for d in docs]
