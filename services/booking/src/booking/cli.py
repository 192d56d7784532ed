"""`booking serve`, `booking seed-demo`, `booking token admin|client CLIENT_ID`."""

from __future__ import annotations

import asyncio
import json

import typer

from booking.settings import Settings
from service_runtime.auth import Principal
from service_runtime.logs import configure_logging
from service_runtime.serve import serve_app

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Booking: the portal and admin API.")
token_cli = typer.Typer(no_args_is_help=True, help="Print a bearer token.")
cli.add_typer(token_cli, name="token")


@cli.command()
def serve() -> None:
    """Serve the API and run the outbox relay (config from the environment)."""
    from booking.app import create_app

    serve_app("booking", Settings(), create_app)


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo business, clients, pets, services and jobs; print ids and tokens as JSON."""
    from booking.app import open_storage
    from booking.handlers import Deps
    from booking.seed import seed_demo as run_seed

    settings = Settings()
    configure_logging(service="booking", level="WARNING", json=settings.log_json)

    async def run() -> dict[str, object]:
        mongo, catalogue, stream, projection = await open_storage(settings)
        try:
            deps = Deps(catalogue=catalogue, stream=stream, projection=projection, wake_relay=lambda _: None)
            return await run_seed(deps=deps, tokens=settings.token_codec())
        finally:
            await mongo.close()

    typer.echo(json.dumps(asyncio.run(run()), indent=2))


@token_cli.command("admin")
def admin_token(business_id: str = typer.Option("demo-business", help="The business the admin runs.")) -> None:
    """Print an admin token for a business."""
    settings = Settings()
    typer.echo(settings.token_codec().issue(Principal("admin", "demo-admin", business_id)))


@token_cli.command("client")
def client_token(
    client_id: str, business_id: str = typer.Option("demo-business", help="The client's business.")
) -> None:
    """Print a client token bound to CLIENT_ID."""
    settings = Settings()
    typer.echo(settings.token_codec().issue(Principal("client", client_id, business_id)))


def main() -> None:
    cli()
