"""Managing staff accounts from Flask's CLI: `flask --app app create-user EMAIL --role admin`.

Passwords are read from a prompt or standard input, or generated and printed once; they
are never taken as an argument (it would stay in the shell's history).
"""

import sys

import click
from flask import current_app

from dashboard import accounts


def _db():
    return current_app.extensions["dashboard"].db


def _password(from_stdin: bool, generate_if_empty: bool) -> tuple[str, bool]:
    """(password, generated?) from standard input, a prompt, or generated."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        entered = click.prompt("Password (empty: generate one)", hide_input=True, confirmation_prompt=True,
                               default="", show_default=False)
        if entered:
            return entered, False
    if not generate_if_empty:
        raise click.UsageError("no password given: use --password-stdin or a terminal")
    return accounts.generate_password(), True


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True, help="viewer: dashboards; admin: also admin pages")
@click.option("--name", default=None, help="shown in the header and the audit log")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def create_user(email, role, name, password_stdin):
    """Create a staff account."""
    password, generated = _password(password_stdin, generate_if_empty=True)
    try:
        account = accounts.create_account(_db(), email, role, password, name)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {account.role} account {account.email}")
    if generated:
        click.echo(f"Password (shown once): {password}")


@click.command("disable-user")
@click.argument("email")
def disable_user(email):
    """Disable a staff account: no more sign-ins, open sessions end."""
    try:
        accounts.disable_account(_db(), email)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Disabled {email.strip().lower()}")


@click.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def set_password(email, password_stdin):
    """Set a new password for a staff account; its open sessions end."""
    password, generated = _password(password_stdin, generate_if_empty=True)
    try:
        accounts.set_password(_db(), email, password)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"New password set for {email.strip().lower()}")
    if generated:
        click.echo(f"Password (shown once): {password}")


def register(server) -> None:
    for command in (create_user, disable_user, set_password):
        server.cli.add_command(command)
