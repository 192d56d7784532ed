"""`audit serve`."""

from __future__ import annotations

import typer

from audit.settings import Settings
from service_runtime.logs import configure_logging
from service_runtime.serve import run_http

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Audit: the client LOGS.")


@cli.command()
def serve() -> None:
    """Consume job request events and serve the LOGS API (config from the environment)."""
    from audit.app import create_app

    settings = Settings()
    configure_logging(service="audit", level=settings.log_level, json=settings.log_json)
    run_http(create_app(settings), host=settings.http_host, port=settings.http_port)


@cli.callback()
def _root() -> None:
    """Audit: the client LOGS."""


def main() -> None:
    cli()
