"""HTTP basics every service shares: correlation ids, body limit, one error format, health routes, metrics."""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_settings import NoDecode
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_runtime.errors import DomainError
from service_runtime.mongo import DATABASE_UNAVAILABLE, may_be_outage
from service_runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
_bearer = HTTPBearer(auto_error=False)
_CORRELATION_ID = re.compile(r"[\x21-\x7e]{1,128}")


def valid_correlation_id(value: str) -> bool:
    """A caller's correlation id is kept when it is 1-128 visible ASCII characters; otherwise one is generated.

    It travels on in AMQP properties (at most 255 bytes) and in every log line.
    """
    return _CORRELATION_ID.fullmatch(value) is not None


ReadinessCheck = Callable[[], Awaitable[bool]]


def _comma_separated(value: object) -> object:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+00:01, 9999-12-31T23:59-01:00: no such instant in UTC
        raise ValueError("must be an instant from 0001-01-01 to 9999-12-31 in UTC") from None


UtcInstant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A query's instant with its offset (a paging cursor), in UTC: one that UTC cannot hold is a 422, not a 500."""

CorsOrigins = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]
"""A setting such as `CORS_ORIGINS=http://127.0.0.1:8001,https://admin.example` (comma-separated)."""
LOCAL_PAGE_ORIGINS = ("http://127.0.0.1:8001", "http://localhost:8001")
"""Where booking serves the admin pages when run locally."""


def require_public(environment: str, setting: str, urls: Sequence[str]) -> None:
    """Outside local mode, what a browser calls must name hosts it can reach: a loopback default would have every
    admin's browser call itself (the pages would load and every notifier or audit call fail)."""
    if environment in {"local", "test"}:
        return
    if not urls or not all(_public_http_url(url) for url in urls):
        raise ValueError(f"{setting} must name the public host(s) the admin pages use outside local mode")


def _public_http_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in {"http", "https"} or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # 127.1, 2130706433: what the resolver would read as an IPv4 address
            address = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return True  # a name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_loopback or address.is_unspecified)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one error format of every service: a stable code and a message for people."""
    return {"code": code, "message": message, **extra}


def _validation_message(error: Mapping[str, Any]) -> str:
    # A validator's own ValueError is worded for people (the pages show it under the field); pydantic puts
    # "Value error, " before it.
    cause = error.get("ctx", {}).get("error")
    return str(cause) if error["type"] == "value_error" and isinstance(cause, ValueError) else str(error["msg"])


def install_error_table(
    app: FastAPI, table: Mapping[type[DomainError], int], *, database_ok: ReadinessCheck | None = None
) -> None:
    """Map domain error classes to HTTP statuses (most specific class wins) and format every error alike.

    `database_ok` (a ping) tells an unexpected database error that is an outage (503) from a bug (500): FerretDB
    answers every command with an OperationFailure while its PostgreSQL is down, where MongoDB would be unreachable.
    """

    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        status = next((s for cls, s in table.items() if isinstance(exc, cls)), 400)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": _validation_message(e)}
            for e in exc.errors()[:20]
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details[:3])
        return JSONResponse(error_body("invalid_request", f"The request is not valid: {summary}", errors=details), 422)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            body = exc.detail
        else:
            code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
                exc.status_code, "http_error"
            )
            body = error_body(code, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Not the request's fault and worth repeating: the client may retry (a cancel repeats safely).
        log.warning("http.database_unavailable", error=repr(exc))
        body = error_body("unavailable", "The service cannot reach its database right now; try again shortly.")
        return JSONResponse(body, 503, headers={"Retry-After": "2"})

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if may_be_outage(exc) and database_ok is not None and not await database_ok():
            return await on_database_unavailable(request, exc)
        return await on_unexpected(request, exc)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", error=repr(exc))
        return JSONResponse(error_body("internal_error", "Something went wrong on our side; try again."), 500)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for unavailable in DATABASE_UNAVAILABLE:  # down, unreachable, out of time, not as durable as asked
        app.add_exception_handler(unavailable, on_database_unavailable)
    app.add_exception_handler(PyMongoError, on_database_error)  # any other: an outage only if a ping fails too
    app.add_exception_handler(Exception, on_unexpected)


class BodyLimitMiddleware:
    """Refuse request bodies over a size limit with 413: before reading one whose length says so, and as soon as the
    bytes read go over it (a chunked body has no length, and a length can understate what follows).

    FastAPI's own `max_body_size` (Starlette's limiter) answers some of these in plain text, outside the one error
    format; this answers in it.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refusal()(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised where the app reads the body: the error table answers it (413, payload_too_large).
                    raise StarletteHTTPException(413, self._refusal_message())
            return message

        # Counted whatever the length says: a server that also takes `Transfer-Encoding: chunked` reads past it.
        await self.app(scope, receive_within_limit, send)

    def _refusal_message(self) -> str:
        return f"The request body is over {self.max_bytes} bytes."

    def _refusal(self) -> JSONResponse:
        return JSONResponse(error_body("payload_too_large", self._refusal_message()), 413)


def install_basics(
    app: FastAPI,
    *,
    max_body_bytes: int,
    readiness: Mapping[str, ReadinessCheck],
    reported: Mapping[str, ReadinessCheck] | None = None,
    metrics_token: str | None = None,
) -> None:
    """Add correlation ids, the body limit, `/healthz`, `/readyz` and `/metrics` (behind `metrics_token` when set:
    only health checks go without a token) to a service's app.

    `/readyz` answers 503 when any check fails (design.md: broker and database reachable), and names each in its
    body. `/readyz/api` answers 503 only when a `readiness` check fails: what the service's HTTP API cannot work
    without; the `reported` ones (the broker, the consumer) are in its body too. The load balancer's probe uses
    `/readyz/api`: a broker outage must not take the portal or the HOME and LOGS reads out of it (cancellations
    wait in the outbox; the consumers catch up).
    """
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(CorrelationIdMiddleware, header_name=CORRELATION_HEADER, validator=valid_correlation_id)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return await _readiness(required=[*readiness, *(reported or {})])

    @app.get("/readyz/api", include_in_schema=False)
    async def readyz_api() -> JSONResponse:
        return await _readiness(required=list(readiness))

    async def _readiness(*, required: list[str]) -> JSONResponse:
        checks = {name: await check() for name, check in {**readiness, **(reported or {})}.items()}
        ready = all(checks[name] for name in required)
        body = {"status": "ready" if ready else "not_ready", "checks": checks, "required": sorted(required)}
        return JSONResponse(body, 200 if ready else 503)

    async def scraper(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if metrics_token is not None and not hmac.compare_digest(given, metrics_token.encode()):
            raise HTTPException(
                401,
                {"code": "unauthorized", "message": "The metrics token is missing or wrong."},
                {"WWW-Authenticate": "Bearer"},
            )

    Instrumentator(excluded_handlers=["/healthz", "/readyz", "/readyz/api", "/metrics"]).instrument(app).expose(
        app, endpoint="/metrics", include_in_schema=False, dependencies=[Depends(scraper)]
    )


def service_app(
    title: str,
    settings: ServiceSettings,
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    error_table: Mapping[type[DomainError], int],
    readiness: Mapping[str, ReadinessCheck],
    reported: Mapping[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """A service's app with what every service has: its token codec, one error table, the basics above."""
    docs = settings.serves_api_docs
    app = FastAPI(
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.tokens = settings.token_codec()
    install_error_table(app, error_table, database_ok=readiness.get("mongodb"))
    install_basics(
        app,
        max_body_bytes=settings.max_body_bytes,
        readiness=readiness,
        reported=reported,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
    )
    return app


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Let the admin pages (served by booking) call this service from the configured origins only."""
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", CORRELATION_HEADER],
            max_age=600,
        )
