"""FastAPI dependencies: the handlers' dependencies and the caller's correlation id."""

from __future__ import annotations

from typing import Annotated

from asgi_correlation_id import correlation_id
from fastapi import Depends, Request

from booking.handlers import Deps


async def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


async def _correlation_id() -> str:
    return correlation_id.get() or ""


BookingDeps = Annotated[Deps, Depends(_deps)]
CorrelationId = Annotated[str, Depends(_correlation_id)]
