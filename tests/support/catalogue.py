"""A business of its own for a test: unique ids and inboxes, so that mail and data of other tests never mix in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import httpx

from booking.handlers import Deps
from service_runtime.auth import Principal, TokenCodec
from tests.support.ids import unique


@dataclass(frozen=True)
class Business:
    id: str
    admin_email: str
    client_id: str
    client_email: str
    service_id: str
    pet_id: str
    tokens: TokenCodec

    def client_headers(self) -> dict[str, str]:
        token = self.tokens.issue(Principal("client", self.client_id, self.id))
        return {"Authorization": f"Bearer {token}"}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(Principal('admin', 'boss', self.id))}"}


async def seed_business(deps: Deps, tokens: TokenCodec) -> Business:
    """One business, one client with one dog, one service type."""
    b = Business(
        id=unique("biz"),
        admin_email=f"{unique('admin')}@paws.example",
        client_id=unique("client"),
        client_email=f"{unique('client')}@client.example",
        service_id=unique("walk"),
        pet_id=unique("rex"),
        tokens=tokens,
    )
    await deps.catalogue.upsert(
        "businesses", {"_id": b.id, "name": "Happy Paws", "admin_email": b.admin_email, "timezone": "Europe/London"}
    )
    await deps.catalogue.upsert(
        "clients", {"_id": b.client_id, "business_id": b.id, "name": "Ann", "email": b.client_email}
    )
    await deps.catalogue.upsert(
        "pets", {"_id": b.pet_id, "client_id": b.client_id, "business_id": b.id, "name": "Rex", "species": "dog"}
    )
    await deps.catalogue.upsert(
        "services", {"_id": b.service_id, "business_id": b.id, "name": "Dog Walk 30 min", "duration_minutes": 30}
    )
    return b


async def submit_and_cancel(http: httpx.AsyncClient, business: Business, *, days_ahead: int = 5) -> str:
    """Submit a request as the client and cancel it; return its id (both answers must be right)."""
    submitted = await http.post(
        "/v1/portal/job-requests",
        headers=business.client_headers(),
        json={
            "service_id": business.service_id,
            "date": (date.today() + timedelta(days=days_ahead)).isoformat(),
            "start_time": "09:00",
            "pet_ids": [business.pet_id],
        },
    )
    assert submitted.status_code == 201, submitted.text
    request_id: str = submitted.json()["id"]
    cancelled = await http.post(f"/v1/portal/job-requests/{request_id}/cancel", headers=business.client_headers())
    assert cancelled.status_code == 200, cancelled.text
    return request_id
