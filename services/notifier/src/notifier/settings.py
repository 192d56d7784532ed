"""Notifier's settings, from the environment."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from service_runtime.settings import RetryDelaysMs, ServiceSettings
from service_runtime.web import LOCAL_PAGE_ORIGINS, CorsOrigins, require_public


class Settings(ServiceSettings):
    """AMQP_URL, MONGODB_URL, AUTH_SECRET, HTTP_PORT (8002), SMTP_* and notifier's own knobs."""

    http_port: int = 8002
    mongodb_database: str = "notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    smtp_connections: int = 4
    email_claim_lease_seconds: float = 30.0
    write_linger_seconds: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How long an effect's write waits for others to share its database round trip (0: none).",
    )
    mail_from: str = "Bookings <no-reply@booking.example>"
    queue: str = "notifier.job_request_events"
    retry_delays_ms: RetryDelaysMs = (1_000, 5_000, 30_000, 120_000)
    defer_limit_seconds: float = Field(
        default=86_400.0, gt=0, description="How long a message may wait out our database's outage before it is parked."
    )
    cors_origins: CorsOrigins = LOCAL_PAGE_ORIGINS
    notice_stream_poll_seconds: float = Field(default=1.0, gt=0, le=30)
    notice_stream_lookback_seconds: float = Field(default=10.0, ge=0, le=300)
    notice_stream_seconds: float = Field(default=15.0, gt=0, le=3600)
    notice_stream_batch: int = Field(default=1000, ge=10, le=10_000)
    notice_streams_per_business: int = Field(default=20, ge=1, le=10_000)

    @model_validator(mode="after")
    def _public_page_origins_outside_local(self) -> Settings:
        require_public(self.environment, "CORS_ORIGINS", self.cors_origins)
        return self
