"""Everything an app keeps in memory between requests, on one object: `app.extensions["caches"]`.

Each part fills its own slot when `create_app` wires it; `database` is what core keeps of the
app's database (`core.caches_of`: the customer index, buyer figures, rollup documents), which
the app drops when it closes its database.
"""

from dataclasses import dataclass, field

from flask import Flask

from core.storage.caches import DatabaseCaches

EXTENSION = "caches"


@dataclass
class AppCaches:
    database: DatabaseCaches
    sessions: object = None  # dashboard.accounts.SessionCache: each session's account, re-checked every few seconds
    api_keys: object = None  # api.keys.KeyCache: each key's scope, re-read every few seconds
    api_routes: object = None  # the API's paths (a werkzeug Map): a 404 or 405 there is the API's, in JSON
    live_renders: object = None  # the live page's renders, shared by every tab showing the same view
    inline_script_hashes: tuple = field(default=())  # Dash's inline scripts, for the Content-Security-Policy


def app_caches(server: Flask) -> AppCaches:
    return server.extensions[EXTENSION]
