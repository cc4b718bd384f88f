"""The course platform's HTTP API under /api/v1, with the payment provider's webhooks.

Apart from the dashboard: a Bearer key (api.keys) opens it, never a session cookie, and a
key opens no page. JSON in and out; every error an RFC 9457 problem (api.problems). Routes
in api.routes, api.analytics and api.webhooks; the OpenAPI document and its docs page in
api.docs. Per-key rate limit: Flask-Limiter, in this process's memory (API_RATE_LIMIT).
"""

import logging
import time

from flask import Response, g, request
from flask_limiter import Limiter
from flask_openapi3 import Info
from flask_openapi3.models import Schema
from pydantic import ValidationError as RequestInvalid
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from api import docs, routes, webhooks
from api.keys import KeyCache, ensure_key_indexes
from api.problems import Problem, field_error, from_core, problem
from caches import app_caches
from core import DatabaseUnavailableError, PurchaseError

API_PREFIX = "/api/"
BLUEPRINTS = ("api", "webhooks", "api_docs")
PUBLIC = ("/api/v1/openapi.json", "/api/v1/docs", "/api/v1/webhooks/", "/api/v1/problems/")
MAX_BODY = 64 * 1024  # a purchase with the most metadata core keeps is under 20 kB
MAX_WEBHOOK_BODY = 1024 * 1024  # Stripe's events are tens of kB
log = logging.getLogger(__name__)
DESCRIPTION = """Ownership checks, sales and refunds for the course platform, and the live page's figures.

- Send `Authorization: Bearer KEY` with every request (keys: `flask --app app create-api-key NAME --scope read|write`,
  or the dashboard's "API keys" page). A `read` key opens the GET routes.
- `POST /purchases` needs an `Idempotency-Key`: the same key and body again answer the first answer again
  (`Idempotent-Replayed: true`) and write nothing.
- Every error is an RFC 9457 problem (`application/problem+json`); its `type` tells problems apart.
- `POST /webhooks/stripe` takes Stripe's signed events (no key: the signature is the credential).
"""


def init_api(server, context) -> None:
    """Mount the API on `server` (a flask_openapi3.OpenAPI app) for `context`'s database."""
    settings = context.settings
    server.info = Info(title="Purchases API", version="1", description=DESCRIPTION)
    server.security_schemes = {"bearer": {"type": "http", "scheme": "bearer"}}
    server.validation_error_callback = invalid_request
    server.components_schemas["Problem"] = Schema(**Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, schema in Problem.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items():
        server.components_schemas[name] = Schema(**schema)
    ensure_key_indexes(context.db)
    keys = app_caches(server).api_keys = KeyCache()

    @server.before_request
    def authenticate():
        """Only API paths; a Bearer key of the right scope, a small JSON body."""
        path = request.path
        if not is_api(path):
            return None
        if request.method == "OPTIONS":
            return _route_problem(server) if request.blueprint not in BLUEPRINTS else _allow(server)
        if path.startswith(PUBLIC):
            return _body_problem(path)
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="purchases"'}
        if scheme.lower() != "bearer" or not secret.strip():
            return problem("unauthorized", instance=path, headers=challenge)
        try:
            key = keys.find(context.db, secret.strip())
        except PyMongoError:
            return problem("unavailable", instance=path, headers={"Retry-After": "1"})
        if key is None:
            return problem("unauthorized", "this key is unknown or revoked", instance=path, headers=challenge)
        if not key.allows(request.method):
            return problem("forbidden", f"the key {key.name!r} has the {key.scope} scope: GET routes only",
                           instance=path)
        g.api_key = key
        return _body_problem(path)

    @server.before_request
    def unknown_route():
        """A path under /api that no API route serves: 404 or 405 (not the dashboard's pages,
        whose catch-all route would answer it with HTML)."""
        if is_api(request.path) and request.blueprint not in BLUEPRINTS:
            return _route_problem(server)
        return None

    api = routes.blueprint(context)
    limiter = Limiter(lambda: g.api_key.name if "api_key" in g else request.remote_addr, app=server,
                      storage_uri="memory://", strategy="moving-window")
    # one count per key for every route, not one per route
    limiter.shared_limit(settings.api_rate_limit, scope="api-key", on_breach=_too_many)(api)
    server.register_api(api)
    server.register_api(webhooks.blueprint(context))
    server.register_blueprint(docs.blueprint())
    _problems_for_every_error(server)


def is_api(path: str) -> bool:
    """Whether a path is the API's: its errors are problems, its doors keys (api/), not the dashboard's."""
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


def _body_problem(path: str):
    """A body the API does not read: too large, of unknown length, not JSON, nested past reading."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    limit = MAX_WEBHOOK_BODY if path.startswith("/api/v1/webhooks/") else MAX_BODY
    request.max_content_length = limit
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # the server may hand over no body at all when it does not know its length
        return problem("length-required", instance=path)
    if (request.content_length or 0) > limit:
        return problem("payload-too-large", f"at most {limit:,} bytes", instance=path)
    if request.content_length and request.mimetype != "application/json":
        return problem("unsupported-media-type", f"send Content-Type: application/json, not {request.mimetype!r}",
                       instance=path)
    try:
        request.get_json(silent=True)  # read once here (Flask keeps it): nesting too deep is refused, not a 500
    except RecursionError:
        return problem("validation-error", "the JSON nests too deeply to be read", instance=path,
                       errors=[field_error("body", None, "nests too deeply")])
    return None


def _api_routes(server):
    """The API's routes alone, without the dashboard's catch-all page route."""
    routes_only = app_caches(server).api_routes
    if routes_only is None:
        rules = [Rule(r.rule, endpoint=r.endpoint, methods=r.methods) for r in server.url_map.iter_rules()
                 if r.endpoint.split(".")[0] in BLUEPRINTS]
        routes_only = app_caches(server).api_routes = Map(rules)
    return routes_only.bind("api")


def _allow(server):
    """OPTIONS: the methods the path takes, from the API's routes alone."""
    allowed = ", ".join(sorted(_api_routes(server).allowed_methods(request.path)))
    answer = Response(status=204, headers={"Allow": allowed})
    del answer.headers["Content-Type"]  # no body, so no type
    return answer


def _route_problem(server):
    """404, or 405 with the methods the path takes, from the API's routes alone."""
    try:
        _api_routes(server).match(request.path, request.method)
    except MethodNotAllowed as error:
        allowed = ", ".join(sorted(error.valid_methods or []))
        return problem("method-not-allowed", f"{request.path} takes {allowed}", instance=request.path,
                       headers={"Allow": allowed})
    except NotFound:
        pass
    return problem("not-found", instance=request.path)


def invalid_request(error: RequestInvalid):
    """flask-openapi3's answer to a request its models refused: a 422 problem, field by field."""
    errors = [field_error(_field(e["loc"]), e.get("input"), e["msg"]) for e in error.errors(include_url=False)]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem("validation-error", detail, instance=request.path, errors=errors)


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _too_many(limit):
    wait = max(1, int(limit.reset_at - time.time()))  # as Flask-Limiter computes its own Retry-After
    return problem("rate-limited", f"this key has made the {limit.limit} requests it may make (API_RATE_LIMIT); "
                   f"try again in {wait} s", instance=request.path, headers={"Retry-After": str(wait)})


def _problems_for_every_error(server) -> None:
    """Under /api, no HTML error page and no bare 500: every error is a problem."""

    @server.errorhandler(PurchaseError)
    def core_error(error):
        if not is_api(request.path):
            raise error
        return from_core(error, request.path, routes.request_fields(), routes.sent_values()) or _internal(error)

    @server.errorhandler(HTTPException)
    def http_error(error):
        if not is_api(request.path):
            return error
        slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large",
                415: "unsupported-media-type"}.get(error.code)
        if slug is not None:
            return problem(slug, instance=request.path)
        if error.code is not None and error.code < 500:
            return problem("validation-error", error.description, instance=request.path, errors=[])
        return _internal(error)

    @server.errorhandler(PyMongoError)
    def database_error(error):
        if not is_api(request.path):
            raise error
        log.warning("API request %s %s: database error %s", request.method, request.path, error)
        return problem("unavailable", instance=request.path, headers={"Retry-After": "1"})


def _internal(error):
    if isinstance(error, DatabaseUnavailableError):
        return problem("unavailable", instance=request.path, headers={"Retry-After": "1"})
    log.error("API request %s %s failed", request.method, request.path, exc_info=error)
    return problem("internal-error", instance=request.path)
