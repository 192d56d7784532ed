"""`audit serve`, `audit dlq list|replay`."""

from __future__ import annotations

from audit.app import create_app, topology
from audit.settings import Settings
from service_runtime.serve import consumer_service_cli

cli = consumer_service_cli(
    name="audit", summary="Audit: the client LOGS.", settings=Settings, create_app=create_app, topology=topology
)


def main() -> None:
    cli()
