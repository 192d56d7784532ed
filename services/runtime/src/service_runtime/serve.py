"""Run a service's ASGI app with uvicorn, our logging, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def run_http(app: FastAPI, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; the app's lifespan stops consumers and closes clients on the way out."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=30
    )
    uvicorn.Server(config).run()
