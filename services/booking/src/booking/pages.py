"""The client portal and the admin pages: static HTML/JS/CSS served by booking, no build step.

The admin pages call notifier (HOME notices) and audit (LOGS) straight from the browser; those services
allow booking's origin through CORS (`CORS_ORIGINS`), and `/admin/config.json` tells the pages where they are.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from booking.settings import Settings

STATIC = Path(__file__).parent / "static"


class Pages(StaticFiles):
    """Static files with a strict Content-Security-Policy: own scripts only, calls to the three services only."""

    def __init__(self, directory: Path, *, connect_to: list[str]) -> None:
        super().__init__(directory=directory, html=True)
        connect = " ".join(["'self'", *connect_to])
        self.headers = {
            "Content-Security-Policy": f"default-src 'self'; connect-src {connect}; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.headers)
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def install_pages(app: FastAPI, settings: Settings) -> None:
    """Serve `/portal/` (the client portal), `/admin/` (HOME, job requests, a client's page) and `/shared/`."""
    config = {"notifier_url": settings.notifier_url.rstrip("/"), "audit_url": settings.audit_url.rstrip("/")}

    @app.get("/admin/config.json", include_in_schema=False)
    async def admin_config() -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    connect_to = [_origin(settings.notifier_url), _origin(settings.audit_url)]
    for name in ("portal", "admin", "shared"):
        app.mount(f"/{name}", Pages(STATIC / name, connect_to=connect_to), name=f"{name}-pages")
