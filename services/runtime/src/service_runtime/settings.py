"""Configuration every service reads from its environment (pydantic-settings)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service_runtime.auth import TokenCodec

LOCAL_SECRET = "local-development-secret-change-me-0123456789"  # noqa: S105 - refused outside local mode

_DelayMs = Annotated[int, Field(gt=0, le=24 * 3600 * 1000)]
RetryDelaysMs = Annotated[tuple[_DelayMs, ...], Field(min_length=1, max_length=20)]
"""RETRY_DELAYS_MS of a consuming service (a JSON list): one wait queue per delay, the attempts one more than them."""


class ServiceSettings(BaseSettings):
    """Settings shared by all services; each service subclasses it with its own port and extras."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    environment: str = Field(default="local", description="local, test, or production.")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_max_pool_size: int = Field(default=20, ge=1, le=500, description="Concurrent database commands.")
    mongodb_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait for a database reply before the command fails."
    )
    auth_secret: SecretStr = SecretStr(LOCAL_SECRET)
    auth_secret_previous: SecretStr | None = Field(
        default=None, description="Verify-only secret during a rotation: tokens signed with it stay valid."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="JSON logs; default: JSON unless a terminal.")
    prefetch: int = Field(default=200, ge=1, le=2000)
    amqp_heartbeat_seconds: int = Field(default=15, ge=1, le=600)
    max_body_bytes: int = 64 * 1024
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token Prometheus sends for /metrics; required outside local and test."
    )
    api_docs: bool | None = Field(
        default=None, description="Serve /docs and /openapi.json (unauthenticated); default: in local and test only."
    )
    gc_gen0_threshold: int = Field(
        default=20_000, ge=100, description="Allocations between two young-generation collections (CPython: 700)."
    )

    @model_validator(mode="after")
    def _no_placeholder_secret_outside_local(self) -> ServiceSettings:
        secret = self.auth_secret.get_secret_value()
        if self.environment not in {"local", "test"} and (secret == LOCAL_SECRET or len(secret) < 32):
            raise ValueError("AUTH_SECRET must be set to a strong secret (32+ characters) outside local mode")
        metrics = self.metrics_token.get_secret_value() if self.metrics_token else ""
        if self.environment not in {"local", "test"} and len(metrics) < 32:
            raise ValueError("METRICS_TOKEN must be set (32+ characters) outside local mode: /metrics needs it")
        return self

    @property
    def serves_api_docs(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment in {"local", "test"}

    def token_codec(self) -> TokenCodec:
        """The token codec of these settings (current secret, and the previous one while rotating)."""
        previous = self.auth_secret_previous.get_secret_value() if self.auth_secret_previous else None
        return TokenCodec(self.auth_secret.get_secret_value(), previous=previous)
