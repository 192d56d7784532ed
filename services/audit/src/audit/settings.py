"""Audit's settings, from the environment."""

from __future__ import annotations

from pydantic import Field, model_validator

from service_runtime.settings import RetryDelaysMs, ServiceSettings
from service_runtime.web import LOCAL_PAGE_ORIGINS, CorsOrigins, require_public


class Settings(ServiceSettings):
    """AMQP_URL, MONGODB_URL, AUTH_SECRET, HTTP_PORT (8003), and audit's own knobs."""

    http_port: int = 8003
    mongodb_database: str = "audit"
    queue: str = "audit.job_request_events"
    retry_delays_ms: RetryDelaysMs = (1_000, 5_000, 30_000, 120_000)
    defer_limit_seconds: float = Field(
        default=86_400.0, gt=0, description="How long a message may wait out our database's outage before it is parked."
    )
    write_linger_seconds: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How long an effect's write waits for others to share its database round trip (0: none).",
    )
    cors_origins: CorsOrigins = LOCAL_PAGE_ORIGINS

    @model_validator(mode="after")
    def _public_page_origins_outside_local(self) -> Settings:
        require_public(self.environment, "CORS_ORIGINS", self.cors_origins)
        return self
