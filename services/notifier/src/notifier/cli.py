"""`notifier serve`."""

from __future__ import annotations

import typer

from notifier.settings import Settings
from service_runtime.logs import configure_logging
from service_runtime.serve import run_http

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Notifier: cancellation emails and HOME notices.")


@cli.command()
def serve() -> None:
    """Consume job request events and serve the notices API (config from the environment)."""
    from notifier.app import create_app

    settings = Settings()
    configure_logging(service="notifier", level=settings.log_level, json=settings.log_json)
    run_http(create_app(settings), host=settings.http_host, port=settings.http_port)


@cli.callback()
def _root() -> None:
    """Notifier: cancellation emails and HOME notices."""


def main() -> None:
    cli()
