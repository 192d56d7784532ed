"""structlog set-up: JSON lines in production, pretty in a terminal, contextvars merged in."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys

import structlog
from asgi_correlation_id import correlation_id


def configure_logging(*, service: str, level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog and the standard library logging to write one format to stderr."""
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        _add_http_correlation_id,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_service(service: str) -> structlog.types.Processor:
    def add(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _add_http_correlation_id(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    # The HTTP middleware keeps the request's id in its own contextvar; consumers bind theirs explicitly.
    if "correlation_id" not in event_dict and (cid := correlation_id.get()):
        event_dict["correlation_id"] = cid
    return event_dict


_redaction_key = os.urandom(32)  # until a service sets its own: digests stable within the process only


def set_redaction_key(secret: str) -> None:
    """Key `redact` with a secret of the deployment (services derive it from AUTH_SECRET), so that the same value
    gives the same digest in every service and replica, and nobody without the secret can test a guess."""
    global _redaction_key
    _redaction_key = hmac.new(b"petsit/log-redaction/v1", secret.encode(), hashlib.sha256).digest()


def redact(value: str) -> str:
    """A short keyed digest of a personal value (email, name) for logs, never the value. Keyed (HMAC), not a bare
    hash: anyone with a list of likely addresses could reverse a bare hash by hashing the list."""
    return "hmac:" + hmac.new(_redaction_key, value.encode(), hashlib.sha256).hexdigest()[:16]
