"""Audit's settings, from the environment."""

from __future__ import annotations

from service_runtime.consumer_app import ConsumerServiceSettings


class Settings(ConsumerServiceSettings):
    """AMQP_URL, MONGODB_URL, AUTH_SECRET, HTTP_PORT (8003), and audit's own knobs."""

    http_port: int = 8003
    mongodb_database: str = "audit"
    queue: str = "audit.job_request_events"
