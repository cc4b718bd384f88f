"""The database's commands, as Flask's CLI runs them (`flask --app app prepare-db`) and as the
scripts of the same names do (`python scripts/seed_demo.py` is a thin wrapper).

Inside `flask` they work on the app's database; run from a script, on the one the settings
name. Each exits non-zero when it did not do what it says.
"""

import functools
import logging
import sys
import time

import click
from flask import current_app, has_app_context
from flask.cli import with_appcontext
from tqdm import tqdm

from core import ensure_indexes
from core.operations import PROBLEMS, REPAIRABLE, check_consistency, is_empty, rebuild_rollups, repair_arrays, seed_demo
from core.operations.consistency import rollup_mismatches
from core.operations.rebuild import ensure_rollups_current
from core.storage import is_embedded
from core.storage.schema import COURSES, IDEMPOTENCY, PURCHASES, REVOKED, TESTS, USERS
from settings import load_settings

log = logging.getLogger("app")
DEMO_ACCOUNTS = (("admin@example.com", "admin", "Demo Admin"), ("viewer@example.com", "viewer", "Demo Viewer"))


def with_database(command):
    """Call `command(settings, opened, **options)` with the app's database inside `flask`, else
    with the settings' own (opened and closed here); exit with the status it returns."""

    @functools.wraps(command)
    def run(**options):
        if has_app_context():
            status = command(current_app.extensions["settings"], current_app.extensions["purchase_database"], **options)
        else:
            settings = load_settings()
            with settings.open_database() as opened:
                status = command(settings, opened, **options)
        if status:
            sys.exit(status)

    return run


def prepare_database(settings, opened) -> None:
    """Demo data and accounts in an empty embedded database this process serves (SEED_DEMO);
    rollups an older release wrote, rebuilt once. Cheap when there is nothing to do."""
    if settings.seed_demo and opened.server is not None and is_empty(opened.db):
        started = time.perf_counter()
        counts = seed_demo(opened.db)
        log.info("seeded demo data %s in %.1f s", counts, time.perf_counter() - started)
        create_demo_accounts(opened.db)
    started = time.perf_counter()
    if ensure_rollups_current(opened.db):
        log.warning("rebuilt the rollups (older format, or a rebuild that died) in %.1f s", time.perf_counter() - started)


def create_demo_accounts(db) -> None:
    """One admin and one viewer for the demo; their passwords are printed this once."""
    from dashboard import accounts  # here: the scripts that wrap the other commands need no Dash

    lines = []
    for email, role, name in DEMO_ACCOUNTS:
        password = accounts.generate_password()
        try:
            accounts.create_account(db, email, role, password, name)
        except accounts.AccountError:
            continue  # kept from an earlier start
        lines.append(f"  {role:6}  {email}  password: {password}")
    if lines:
        print("Demo accounts (passwords shown once; change them with `flask --app app set-password EMAIL`):",
              *lines, sep="\n", flush=True)


@click.command("prepare-db")
@with_database
def prepare_db(settings, opened) -> int:
    """Get the database ready to serve: demo data on a first start (SEED_DEMO), rollups current."""
    prepare_database(settings, opened)
    click.echo(f"Database ready: {opened.description}")
    return 0


@click.command("seed-demo")
@click.option("--users", type=int, default=600, show_default=True)
@click.option("--items", type=int, default=40, show_default=True, help="courses and tests together")
@click.option("--purchases", type=int, default=5000, show_default=True)
@click.option("--seed", type=int, default=None, help="random seed, for repeatable data")
@click.option("--reset", is_flag=True, help="drop existing demo collections first")
@with_database
def seed_demo_command(settings, opened, users, items, purchases, seed, reset) -> int:
    """Fill the database with demo data: a catalog, users and 90 days of purchases."""
    db = opened.db
    print(f"Seeding {opened.description}")
    if opened.server is None and is_embedded(db):
        print("The app is running on this data folder, so documents go over the wire one at a time,\n"
              "which takes minutes; stop the app for a bulk load in seconds.", file=sys.stderr)
    if reset:
        for name in (USERS, COURSES, TESTS, PURCHASES, REVOKED, IDEMPOTENCY):
            db.drop_collection(name)
        ensure_indexes(db)
    elif not is_empty(db):
        print("The database already has users or purchases; use --reset to replace them.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        with tqdm(total=users + items + purchases, unit="doc", desc="demo data") as bar:
            counts = seed_demo(db, users=users, items=items, purchases=purchases, seed=seed, progress=bar.update)
    except ValueError as error:  # sizes that cannot make a demo: nothing was written
        raise click.UsageError(str(error)) from None
    print(", ".join(f"{n} {name}" for name, n in counts.items()) + f" in {time.perf_counter() - started:.1f} s")
    return 0


@click.command("rebuild-rollups")
@with_database
def rebuild_rollups_command(settings, opened) -> int:
    """Rebuild the rollups from the purchases, after a migration or import (purchases may keep
    coming in; analytics readers wait)."""
    print(f"Rebuilding rollups in {opened.description}")
    started = time.perf_counter()
    with tqdm(unit="doc", desc="rollups") as bar:

        def progress(written, total):
            bar.total = total
            bar.update(written - bar.n)

        written = rebuild_rollups(opened.db, progress)
    print(f"{written} rollup documents in {time.perf_counter() - started:.1f} s")
    left = rollup_mismatches(opened.db)  # in memory that does not grow with the rollups
    print("rollups match purchases" if not left else f"{len(left)} counters still differ (purchases changed meanwhile)")
    return 0 if not left else 1


@click.command("check-consistency")
@click.option("--repair", is_flag=True, help="make user arrays match purchases")
@click.option("--examples", type=int, default=3, show_default=True, help="examples printed per problem")
@with_database
def check_consistency_command(settings, opened, repair, examples) -> int:
    """Check that every purchase is in both places and in the rollups; --repair fixes both from
    `purchases`. Exit status 1 when a problem is found (after --repair: when one remains)."""
    print(f"Checking {opened.description}")
    problems = check_consistency(opened.db)
    total = report(problems, examples)
    if repair and any(problems[name] for name in (*REPAIRABLE, "rollup_mismatch")):
        changes = repair_arrays(opened.db, problems)
        print(f"\nRepaired {len(changes)} array entries:")
        for line in changes:
            print("  " + line)
        if problems["rollup_mismatch"]:
            written = rebuild_rollups(opened.db)
            print(f"Rebuilt the rollups from purchases: {written} documents")
        print("\nAfter repair:")
        total = report(check_consistency(opened.db), examples)
    print("\nconsistent" if total == 0 else f"\n{total} problem(s) found")
    return 1 if total else 0


def report(problems: dict, examples: int) -> int:
    """Print the count and a few examples of each kind of problem; return the total."""
    total = 0
    for name, found in problems.items():
        total += len(found)
        mark = "ok " if not found else "BAD"
        print(f"{mark} {len(found):6d}  {PROBLEMS[name]}")
        for example in found[:examples]:
            print("             " + ", ".join(f"{k}={v}" for k, v in example.items()))
    return total


def register(server) -> None:
    """The commands on the app's CLI, each run in the app's context (its database), however invoked."""
    for command, name in ((prepare_db, None), (seed_demo_command, None), (rebuild_rollups_command, None),
                          (check_consistency_command, None), (check_consistency_command, "test-hybrid-system")):
        in_app = click.Command(name or command.name, params=command.params, help=command.help,
                               callback=with_appcontext(command.callback))
        server.cli.add_command(in_app)


def run_as_script(command, argv=None) -> int:
    """A script's main: the command with the script's arguments, outside Flask."""
    try:
        command.main(args=argv, prog_name=sys.argv[0], standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except SystemExit as done:
        return done.code or 0
    return 0
