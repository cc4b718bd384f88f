"""Sign-in and the doors around everything else: sessions, roles, throttling, origins, headers.

- `GET /login` shows the form, `POST /login` signs in (form fields `email`, `password`,
  optional `next`: a same-site path), `POST /logout` signs out (`GET /logout` shows a
  button). Flask-Login keeps the session; its cookie names a sign-in kept server-side
  (`dashboard.sign_ins`), which a sign-out, an idle timeout or the lifetime ends.
- Every other path needs a signed-in account: pages redirect to /login, `/_dash-*` answers
  401. `/api/*` is the course platform's API (api/): its own keys open it, never a session. Admin pages send viewers back to the live page; a Dash callback that
  writes to an admin component (`admin-` ids) answers 403 to a viewer. Each write callback
  checks the role again itself (`require_admin`).
- Password checks are limited per account and per address, claimed before the check, and
  failures slow an account down progressively (`dashboard.sign_in_throttle`, counters in
  the database, so every worker shares them); the message never says which field was wrong.
- A state-changing request from another origin is refused; responses may not be framed.
- A body larger than MAX_CONTENT_LENGTH (SIGN_IN_BODY for the sign-in forms) is refused
  with 413 from its Content-Length, before it is read; one without a length stops being
  read at the limit.
"""

import json
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Response, abort, g, jsonify, redirect, render_template_string, request, session
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from pymongo.errors import PyMongoError

from caches import app_caches
from dashboard import accounts, sign_ins
from dashboard.context import DashboardContext
from dashboard.sign_in_throttle import SignInThrottle

PUBLIC_PATHS = {"/login", "/logout"}
PUBLIC_PREFIXES = ("/assets/",)
API_PREFIXES = ("/_dash-",)
PLATFORM_API = "/api/"  # api/ guards it with keys
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/")  # files a browser may keep
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ADMIN_PREFIX = "admin-"
SECRET_FILE = "secret_key"
SIGN_IN_BODY = 4096  # bytes: an email, a password and a path
FAILED = "Email or password is wrong, or the account is disabled."
UNAVAILABLE = "The database did not answer. Try again in a few seconds."
log = logging.getLogger(__name__)


def init_auth(server, context: DashboardContext, admin_paths) -> None:
    """Protect `server`: sessions, the sign-in routes, the guard, throttling, headers.

    `admin_paths(path)` tells whether a page path is for admins only.
    """
    settings = context.settings
    server.secret_key = settings.secret_key or _stored_secret(settings.data_dir)
    policy = sign_ins.SessionPolicy(settings.session_idle_admin, settings.session_idle_viewer,
                                    settings.session_lifetime)
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=policy.lifetime,
        # the cookie ends with the sign-in's lifetime from sign-in, not from the last poll; and
        # a poll every second need not sign and send it again (0.75 ms a request)
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    manager = LoginManager(server)
    manager.session_protection = "basic"

    sign_ins.ensure_indexes(context.db)
    sessions = app_caches(server).sessions = accounts.SessionCache(policy=policy)

    @manager.user_loader
    def load(session_id):
        return sessions.account(context.db, session_id)

    checks = SignInThrottle(context.db, settings.login_limit_account, settings.login_limit_address)
    checks.ensure_indexes()

    @server.route("/login", methods=["GET", "POST"])
    def login():
        target = safe_next(request.values.get("next"))
        if request.method != "POST":  # GET, and HEAD, which must not count as a sign-in
            if current_user.is_authenticated:
                return redirect(target)
            return _login_page(target)
        email, address = _email_key(), get_remote_address() or ""
        refusal = checks.claim(email, address)
        if refusal is not None:
            response = Response(_login_page(target, refusal.message, _text(request.form.get("email"))), 429)
            response.headers["Retry-After"] = str(refusal.retry_after)
            return response
        try:
            account = accounts.verify(context.db, request.form.get("email"), request.form.get("password"))
        except PyMongoError:
            log.warning("a sign-in could not read its account", exc_info=True)
            response = Response(_login_page(target, UNAVAILABLE, _text(request.form.get("email"))), 503)
            response.headers["Retry-After"] = "5"
            return response
        checks.record(email, address, account is not None)
        if account is None:
            return _login_page(target, FAILED, _text(request.form.get("email"))), 401
        session.clear()  # nothing of a session before this sign-in carries over
        session.permanent = True  # the cookie ends with the sign-in's lifetime, not the browser
        login_user(sessions.sign_in(context.db, account))
        return redirect(target)

    @server.route("/logout", methods=["GET", "POST"])
    def logout():
        if request.method != "POST":  # a link or a prefetch must not sign anyone out
            return render_template_string(LOGOUT_PAGE, signed_in=current_user.is_authenticated,
                                          email=getattr(current_user, "email", ""))
        if current_user.is_authenticated:
            sessions.sign_out(context.db, current_user.session_id)
        logout_user()
        session.clear()
        return redirect("/login")

    @server.errorhandler(429)
    def too_many(error):
        if getattr(error, "response", None) is not None:
            return error.response  # a limit that answers for itself (the API's: api.problems)
        response = jsonify(error=error.description)
        response.status_code = 429
        return response

    @server.before_request
    def guard():
        if request.path == PLATFORM_API.rstrip("/") or request.path.startswith(PLATFORM_API):
            return None  # no session, no cookie, no origin check: a Bearer key or a signature (api/)
        too_large = refuse_large_body(SIGN_IN_BODY if request.path in PUBLIC_PATHS else settings.max_content_length)
        if too_large is not None:
            return too_large
        if request.method not in SAFE_METHODS and not same_origin():
            abort(403, "cross-origin request refused")
        path = request.path
        if path in PUBLIC_PATHS or (path.startswith(PUBLIC_PREFIXES) and not path.endswith("/")):
            return None  # the stylesheet the sign-in page needs; a folder's index is not public
        if not current_user.is_authenticated:
            if path.startswith(API_PREFIXES):
                return jsonify(error="sign in first"), 401
            return redirect("/login?next=" + _quote(request.full_path.rstrip("?")))
        if is_activity():
            sessions.touch(context.db, current_user)
        if path == "/_dash-update-component":
            output = _dispatch_key(request.get_json(silent=True))
            if output is None:
                return jsonify(error="not a callback request"), 400
            if is_admin_callback(output) and not current_user.is_admin:
                return jsonify(error="this needs an admin account"), 403
        elif request.method == "GET" and admin_paths(path) and not current_user.is_admin:
            # the app is served (nothing of the page is in it) and its router says "Admins only":
            # a viewer who typed the address learns why, instead of landing elsewhere without a word
            g.admins_only = True
        return None

    @server.after_request
    def headers(response):
        if g.get("admins_only") and response.status_code == 200:
            response.status_code = 403
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = content_policy(app_caches(server).inline_script_hashes)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.path.startswith(STATIC_PREFIXES):
            response.headers["Cache-Control"] = "no-store"  # pages and answers may name customers
        elif request.path.startswith(PUBLIC_PREFIXES) and request.args.get("m") and response.status_code in (200, 304):
            # Dash names an asset by its file's time (?m=...): a changed file gets a new address,
            # so a browser keeps this one for good (Dash does the same for its fingerprinted
            # component suites); without ?m= (the sign-in page's stylesheet) it asks each time
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def refuse_large_body(limit: int):
    """A 413 when the request says its body is over `limit` bytes (nothing of it is read);
    else None, with reading stopped at `limit` for a body that does not say its length."""
    request.max_content_length = limit
    if (request.content_length or 0) <= limit:
        return None
    response = jsonify(error=f"the request body is over {limit:,} bytes") if request.path.startswith(API_PREFIXES) \
        else Response(f"Request too large: at most {limit:,} bytes.", mimetype="text/plain")
    response.status_code = 413
    response.headers["Connection"] = "close"  # the server need not read the rest to keep the connection
    return response


def require_admin() -> str:
    """The signed-in admin's email, for a callback about to write; 401/403 otherwise."""
    if not current_user.is_authenticated:
        abort(401)
    if not current_user.is_admin:
        abort(403)
    return current_user.email


def safe_next(target) -> str:
    """`target` when it is a path on this site, else "/"."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return "/"
    return target


def same_origin() -> bool:
    """False when the browser says the request comes from another site, or another scheme
    of this one (http:// against https://)."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser's cross-origin request: browsers send Origin with them
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc == request.host


def content_policy(script_hashes) -> str:
    """The Content-Security-Policy: this site's own files only; Dash's inline scripts by
    their hashes; inline styles (Plotly writes its own <style>); no framing, no plugins."""
    scripts = " ".join(["'self'", *script_hashes])  # Dash gives them quoted
    return ("default-src 'self'; "
            f"script-src {scripts}; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def _dispatch_key(body) -> str | None:
    """The callback a Dash request names: Dash dispatches on `output` alone (its callback map's
    key), so that is what the role is checked against, whatever `outputs` says."""
    output = body.get("output") if isinstance(body, dict) else None
    return output if isinstance(output, str) else None


def is_admin_callback(output: str) -> bool:
    """True when a callback's key (as Dash's callback map has it: "id.prop", "..a.p...b.q..",
    or a pattern id as JSON) names a component whose id starts with `admin-`."""
    for part in output.strip(".").split("..."):
        ident = part.rsplit(".", 1)[0]
        if ident.startswith("{"):
            try:
                values = json.loads(ident).values()
            except (ValueError, AttributeError):
                return True  # not an id Dash made: no viewer needs it
        else:
            values = [ident]
        if any(isinstance(v, str) and v.startswith(ADMIN_PREFIX) for v in values):
            return True
    return False


def is_activity() -> bool:
    """Whether a request is a person's doing: anything but a page's timer (a Dash callback
    fired by `n_intervals` alone), so a tab left open does not keep its sign-in alive."""
    if request.path != "/_dash-update-component":
        return True
    body = request.get_json(silent=True)
    changed = body.get("changedPropIds") if isinstance(body, dict) else None
    return not (isinstance(changed, list) and changed
                and all(isinstance(c, str) and c.endswith(".n_intervals") for c in changed))


def _email_key() -> str:
    return _text(request.form.get("email")).strip().lower()[:254]


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _quote(path: str) -> str:
    return quote(path, safe="/")


def _stored_secret(data_dir: Path) -> str:
    """The secret kept in DATA_DIR (mode 0600), made once by whichever process comes first."""
    path = Path(data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    return path.read_text().strip()


def _login_page(target: str, message: str | None = None, email: str = "") -> str:
    return render_template_string(LOGIN_PAGE, target=target, message=message, email=email)


def _signin_shell(title: str, body: str) -> str:
    """A page of the sign-in kind (no Dash): the stylesheet, a heading, `body` (a Jinja template)."""
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · Purchases</title>
  <link rel="stylesheet" href="/assets/style.css">
</head>
<body>
  <main class="signin">
    <h1>Purchases</h1>
{body}  </main>
</body>
</html>
"""


LOGOUT_PAGE = _signin_shell("Sign out", """\
    {% if signed_in %}
    <p class="muted">Signed in as {{ email }}. <a href="/">Back to the dashboard</a></p>
    <form method="post" action="/logout" class="signin-form">
      <button type="submit" class="button primary" id="logout-submit">Sign out</button>
    </form>
    {% else %}
    <p class="muted">You are signed out. <a href="/login">Sign in</a></p>
    {% endif %}
""")

LOGIN_PAGE = _signin_shell("Sign in", """\
    <p class="muted">Sign in with your staff account.</p>
    {% if message %}<p class="message" role="alert" id="login-error">{{ message }}</p>{% endif %}
    <form method="post" action="/login" class="signin-form">
      <input type="hidden" name="next" value="{{ target }}">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required autofocus value="{{ email }}">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required>
      <button type="submit" class="button primary" id="login-submit">Sign in</button>
    </form>
""")
