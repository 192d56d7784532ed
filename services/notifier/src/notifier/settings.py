"""Notifier's settings, from the environment."""

from __future__ import annotations

from pydantic import Field, SecretStr

from service_runtime.consumer_app import ConsumerServiceSettings


class Settings(ConsumerServiceSettings):
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
    mail_from: str = "Bookings <no-reply@booking.example>"
    queue: str = "notifier.job_request_events"
    notice_stream_poll_seconds: float = Field(default=1.0, gt=0, le=30)
    notice_stream_lookback_seconds: float = Field(default=10.0, ge=0, le=300)
    notice_stream_seconds: float = Field(default=15.0, gt=0, le=3600)
    notice_stream_batch: int = Field(default=1000, ge=10, le=10_000)
    notice_streams_per_business: int = Field(default=20, ge=1, le=10_000)
