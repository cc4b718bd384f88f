"""Managing staff accounts from Flask's CLI: `flask --app app create-user EMAIL --role admin`.

Passwords are read from a prompt or standard input, or generated and printed once; they
are never taken as an argument (it would stay in the shell's history).
"""

import sys
from datetime import UTC

import click
from flask import current_app

from dashboard import accounts

CLI_ACTOR = "cli"  # who the change entries name, as API keys made here name it


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
        account = accounts.create_account(_db(), email, role, password, name, actor=CLI_ACTOR)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {account.role} account {account.email}")
    if generated:
        click.echo(f"Password (shown once): {password}")


@click.command("disable-user")
@click.argument("email")
def disable_user(email):
    """Disable a staff account: no more sign-ins, open sessions end (never the last enabled admin)."""
    email, changed = _change(accounts.disable_account, email)
    click.echo(f"Disabled {email}; its sign-ins have ended" if changed else f"{email} is disabled already")


@click.command("enable-user")
@click.argument("email")
def enable_user(email):
    """Enable a disabled staff account: it signs in with its password again."""
    email, changed = _change(accounts.enable_account, email)
    click.echo(f"Enabled {email}" if changed else f"{email} is enabled already")


@click.command("set-role")
@click.argument("email")
@click.argument("role", metavar="admin|viewer")
def set_role(email, role):
    """Make a staff account an admin or a viewer (never the last enabled admin a viewer)."""
    email, changed = _change(lambda db, address, actor: accounts.set_role(db, address, role, actor), email)
    article = "an" if role == "admin" else "a"
    click.echo(f"{email} is now {article} {role}" if changed else f"{email} is {article} {role} already")


def _change(change, email) -> tuple[str, bool]:
    """Run `change(db, email, actor)`: the account's email, and whether anything changed."""
    try:
        changed = change(_db(), email, CLI_ACTOR)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    return accounts.normalise_email(email), changed


@click.command("list-users")
def list_users():
    """Every staff account: email, name, role, enabled or disabled, created, last sign-in (UTC)."""
    found = accounts.list_accounts(_db())
    if not found:
        click.echo("No staff accounts yet: flask --app app create-user EMAIL --role admin")
        return
    width = max(len(account.email) for account in found)
    name_width = min(max(len(account.name) for account in found), 30)
    click.echo(f"{'email':{width}}  {'name':{name_width}}  {'role':6}  {'status':8}  {'created (UTC)':16}  "
               "last sign-in (UTC)")
    for account in found:
        status = "disabled" if account.disabled else "enabled"
        click.echo(f"{account.email:{width}}  {account.name[:name_width]:{name_width}}  {account.role:6}  {status:8}  "
                   f"{_when(account.created_at, 'unknown'):16}  {_when(account.last_sign_in, 'never')}")


def _when(moment, otherwise: str) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}" if moment else otherwise


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
    for command in (create_user, disable_user, enable_user, set_role, list_users, set_password):
        server.cli.add_command(command)
