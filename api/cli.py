"""API keys from Flask's CLI: `flask --app app create-api-key NAME --scope read|write`,
`list-api-keys`, `revoke-api-key NAME`. A key is printed once, when it is made."""

import click
from flask import current_app

from api import keys


def _db():
    return current_app.extensions["dashboard"].db


@click.command("create-api-key")
@click.argument("name")
@click.option("--scope", type=click.Choice(keys.SCOPES), required=True,
              help="read: the GET routes (ownership, history, analytics); write: also purchases and revocations")
def create_api_key(name, scope):
    """Make an API key; it is shown this once."""
    try:
        key, secret = keys.create_key(_db(), name, scope, created_by="cli")
    except keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {key.scope} key {key.name!r}. The key (shown once; keep it secret):")
    click.echo(secret)


@click.command("list-api-keys")
def list_api_keys():
    """Every API key: name, scope, when made, and whether revoked (never the key itself)."""
    found = keys.list_keys(_db())
    if not found:
        click.echo("No API keys yet: flask --app app create-api-key NAME --scope read|write")
        return
    click.echo(f"{'name':24} {'scope':6} {'key starts':14} {'created (UTC)':17} status")
    for key in found:
        status = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M} by {key.revoked_by or '?'}"
        click.echo(f"{key.name:24} {key.scope:6} {key.prefix + '…':14} {key.created_at:%Y-%m-%d %H:%M} {status}")


@click.command("revoke-api-key")
@click.argument("name")
def revoke_api_key(name):
    """Revoke an API key: refused by every worker within seconds; its name is not reused."""
    try:
        keys.revoke_key(_db(), name, revoked_by="cli")
    except keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Revoked {name!r}")


def register(server) -> None:
    for command in (create_api_key, list_api_keys, revoke_api_key):
        server.cli.add_command(command)
