"""`notifier serve`, `notifier dlq list|replay`."""

from __future__ import annotations

from notifier.app import create_app, topology
from notifier.settings import Settings
from service_runtime.serve import consumer_service_cli

cli = consumer_service_cli(
    name="notifier",
    summary="Notifier: cancellation emails and HOME notices.",
    settings=Settings,
    create_app=create_app,
    topology=topology,
)


def main() -> None:
    cli()
