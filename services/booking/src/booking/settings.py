"""Booking's settings, from the environment."""

from __future__ import annotations

from pydantic import Field, model_validator

from service_runtime.settings import ServiceSettings
from service_runtime.web import require_public


class Settings(ServiceSettings):
    """AMQP_URL, MONGODB_URL, AUTH_SECRET, HTTP_PORT (8001), and booking's own knobs."""

    http_port: int = 8001
    mongodb_database: str = "booking"
    relay_batch_size: int = 500
    relay_sweep_batch_size: int = 5000
    relay_sweep_seconds: float = 2.0
    relay_sweep_lease_seconds: float = 30.0
    # 3 ms, measured against 1 and 10 (bench/README.md): at 50/s all effects p50 20 -> 9-10 ms and API p99 23-25 ->
    # 16-17 ms; at 90/s ~1 ms more CPU per cancellation than 10 ms (fewer events per publish pass).
    relay_linger_seconds: float = 0.003
    relay_mark_seconds: float = 0.25
    notifier_url: str = Field(
        default="http://127.0.0.1:8002", description="Notifier as the admin pages' browser sees it."
    )
    audit_url: str = Field(default="http://127.0.0.1:8003", description="Audit as the admin pages' browser sees it.")

    @model_validator(mode="after")
    def _public_service_urls_outside_local(self) -> Settings:
        require_public(self.environment, "NOTIFIER_URL", [self.notifier_url])
        require_public(self.environment, "AUDIT_URL", [self.audit_url])
        return self
