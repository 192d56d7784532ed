"""Booking's settings, from the environment."""

from __future__ import annotations

from service_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """AMQP_URL, MONGODB_URL, AUTH_SECRET, HTTP_PORT (8001), and booking's own knobs."""

    http_port: int = 8001
    mongodb_database: str = "booking"
    relay_batch_size: int = 500
    relay_sweep_seconds: float = 2.0
