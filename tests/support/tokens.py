"""Bearer headers for tests."""

from __future__ import annotations

from service_runtime.auth import Principal
from service_runtime.settings import ServiceSettings


def admin_headers(business_id: str, settings: ServiceSettings) -> dict[str, str]:
    """An admin of `business_id`, with a token the service of `settings` accepts."""
    token = settings.token_codec().issue(Principal("admin", "boss", business_id))
    return {"Authorization": f"Bearer {token}"}
