"""Reading what the SMTP server (Mailpit) received, through its REST API."""

from __future__ import annotations

from typing import Any

import httpx


class Mailpit:
    """A thin reader of Mailpit's `/api/v1` endpoints."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def messages_to(self, address: str) -> list[dict[str, Any]]:
        """Summaries of the messages with `address` in To or Cc."""
        found = await self._http.get("/api/v1/search", params={"query": f'to:"{address}"', "limit": 500})
        found.raise_for_status()
        return list(found.json()["messages"])

    async def message(self, message_id: str) -> dict[str, Any]:
        """One whole message (headers, text) by Mailpit's id."""
        response = await self._http.get(f"/api/v1/message/{message_id}")
        response.raise_for_status()
        return dict(response.json())

    async def headers(self, message_id: str) -> dict[str, list[str]]:
        response = await self._http.get(f"/api/v1/message/{message_id}/headers")
        response.raise_for_status()
        return dict(response.json())

    async def search(self, text: str) -> list[dict[str, Any]]:
        """Summaries of the messages whose headers or text contain `text` (e.g. a job request id)."""
        found = await self._http.get("/api/v1/search", params={"query": f'"{text}"', "limit": 500})
        found.raise_for_status()
        return list(found.json()["messages"])

    async def search_all(self, query: str) -> list[dict[str, Any]]:
        """Every summary matching a Mailpit search query (e.g. `cc:admin@x.example`), page by page."""
        found: list[dict[str, Any]] = []
        while True:
            page = await self._http.get("/api/v1/search", params={"query": query, "limit": 500, "start": len(found)})
            page.raise_for_status()
            messages = page.json()["messages"]
            found += messages
            if len(messages) < 500:
                return found

    async def delete_matching(self, query: str) -> None:
        """Delete every message matching a Mailpit search query (keeps the mail store small between runs)."""
        response = await self._http.delete("/api/v1/search", params={"query": query})
        response.raise_for_status()

    async def close(self) -> None:
        await self._http.aclose()
