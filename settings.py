"""The one settings object: defaults, then the environment, then the factory's `config`.

Built once by `app.create_app` (and by each script) and passed down; nothing below reads
the environment. Keys are the environment variables' names, as in Flask's config.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many

from core import CoreSettings
from database import OpenDatabase, open_database
from reports.send import SmtpServer, parse_smtp_url

DEFAULTS = {
    "MONGODB_URI": "",
    "MONGODB_DB": "",
    "DATA_DIR": "data",
    "HOST": "127.0.0.1",
    "PORT": "8050",
    "SEED_DEMO": "1",
    "REFRESH_MS": "1000",
    "TIMEZONE": "UTC",
    "CURRENCY": "USD",
    "PAYMENT_METHODS": "credit_card,paypal,stripe,bank_transfer,admin_grant",
    "BUYERS_MAX_AGE": "30",
    "SECRET_KEY": "",
    "SECURE_COOKIES": "0",
    "LOGIN_LIMIT_ACCOUNT": "5 per minute",
    "LOGIN_LIMIT_ADDRESS": "20 per minute",
    "TRUSTED_PROXIES": "0",
    "TRUSTED_HOSTS": "",
    "LOCAL_PROXY": "0",
    "MAX_CONTENT_LENGTH": str(16 * 1024 * 1024),
    "SESSION_IDLE_MINUTES": "60",
    "SESSION_IDLE_MINUTES_VIEWER": "720",
    "SESSION_MAX_DAYS": "7",
    "HEALTH_CHECK_SECONDS": "3600",
    "EARLIEST_PURCHASE": "2000-01-01",
    "MAX_AMOUNT": "1000000",
    "DB_TIMEOUT": "10",
    "API_RATE_LIMIT": "100 per second",
    "STRIPE_WEBHOOK_SECRET": "",
    "SMTP_URL": "",
    "REPORTS_FROM": "",
    "REPORTS_CHECK_SECONDS": "60",
}


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str
    mongodb_db: str | None
    data_dir: Path
    host: str
    port: int
    seed_demo: bool
    refresh_ms: int
    timezone: ZoneInfo
    core: CoreSettings
    secret_key: str  # empty: one generated and kept in DATA_DIR
    secure_cookies: bool  # set when served over HTTPS
    login_limit_account: str
    login_limit_address: str
    max_content_length: int  # bytes: the largest request body the dashboard reads (the API has its own)
    trusted_proxies: int  # proxies in front that set X-Forwarded-For/-Proto/-Host (werkzeug's ProxyFix)
    trusted_hosts: tuple[str, ...]  # Host headers answered (empty: any); werkzeug's host patterns
    local_proxy: bool  # set by gunicorn.conf.py when its nginx is in front: one more X-Forwarded-For
    session_idle_admin: timedelta  # a sign-in idle this long ends (dashboard.sign_ins)
    session_idle_viewer: timedelta
    session_lifetime: timedelta  # and any sign-in this old
    health_check_seconds: int  # 0: no scheduled consistency checks in this process
    db_timeout: float  # seconds a request's database calls may take before DatabaseUnavailableError
    api_rate_limit: str  # requests per API key, per web process
    stripe_webhook_secret: str  # whsec_...; empty: no webhook can be verified
    smtp: SmtpServer | None  # where scheduled reports are sent (SMTP_URL); None: not set
    reports_from: str  # the reports' From address
    reports_check_seconds: int  # how often this process looks for reports due; 0: never
    values: Mapping  # every merged key, for Flask's config

    def open_database(self, db_name: str | None = None) -> OpenDatabase:
        """The database these settings name (MONGODB_URI, or the embedded server in DATA_DIR)."""
        return open_database(uri=self.mongodb_uri, db_name=db_name or self.mongodb_db, data_dir=self.data_dir)


def load_settings(config: Mapping | None = None, environ: Mapping | None = None) -> Settings:
    """Merge defaults, the environment (`os.environ` unless given) and `config`; check each value."""
    environ = os.environ if environ is None else environ
    values = {**DEFAULTS, **{k: environ[k] for k in DEFAULTS if k in environ}, **(config or {})}
    return Settings(
        mongodb_uri=str(values["MONGODB_URI"] or "").strip(),
        mongodb_db=str(values["MONGODB_DB"] or "").strip() or None,
        data_dir=Path(str(values["DATA_DIR"] or "data")),
        host=str(values["HOST"]),
        port=_integer(values, "PORT", 1, 65535),
        seed_demo=_flag(values["SEED_DEMO"]),
        refresh_ms=_integer(values, "REFRESH_MS", 200, 3_600_000),
        timezone=_zone(values["TIMEZONE"]),
        core=CoreSettings.from_mapping(values),
        secret_key=str(values["SECRET_KEY"] or ""),
        secure_cookies=_flag(values["SECURE_COOKIES"]),
        login_limit_account=_limit(values, "LOGIN_LIMIT_ACCOUNT"),
        login_limit_address=_limit(values, "LOGIN_LIMIT_ADDRESS"),
        max_content_length=_integer(values, "MAX_CONTENT_LENGTH", 64 * 1024, 1024**3),
        trusted_proxies=_integer(values, "TRUSTED_PROXIES", 0, 10),
        local_proxy=_flag(values["LOCAL_PROXY"]),
        trusted_hosts=tuple(h.strip() for h in str(values["TRUSTED_HOSTS"] or "").split(",") if h.strip()),
        session_idle_admin=timedelta(minutes=_number(values, "SESSION_IDLE_MINUTES", 0.05, 525_600, "minutes")),
        session_idle_viewer=timedelta(minutes=_number(values, "SESSION_IDLE_MINUTES_VIEWER", 0.05, 525_600, "minutes")),
        session_lifetime=timedelta(days=_number(values, "SESSION_MAX_DAYS", 0.001, 366, "days")),
        health_check_seconds=_integer(values, "HEALTH_CHECK_SECONDS", 0, 366 * 86400),
        db_timeout=_seconds(values, "DB_TIMEOUT", 0.5, 300),
        api_rate_limit=_limit(values, "API_RATE_LIMIT"),
        stripe_webhook_secret=str(values["STRIPE_WEBHOOK_SECRET"] or "").strip(),
        smtp=(smtp := parse_smtp_url(values["SMTP_URL"])),
        reports_from=_sender(values["REPORTS_FROM"], smtp),
        reports_check_seconds=_integer(values, "REPORTS_CHECK_SECONDS", 0, 86400),
        values=values,
    )


def _flag(value) -> bool:
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")


def _limit(values: Mapping, name: str) -> str:
    try:
        parse_many(str(values[name]))
    except ValueError:
        raise ValueError(f"{name} must be a rate such as '5 per minute', got {values[name]!r}") from None
    return str(values[name])


def _integer(values: Mapping, name: str, low: int, high: int) -> int:
    try:
        number = int(str(values[name]).strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {values[name]!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _seconds(values: Mapping, name: str, low: float, high: float) -> float:
    return _number(values, name, low, high, "seconds")


def _number(values: Mapping, name: str, low: float, high: float, unit: str) -> float:
    try:
        number = float(str(values[name]).strip())
    except ValueError:
        number = float("nan")
    if not low <= number <= high:
        raise ValueError(f"{name} must be a number of {unit} from {low:g} to {high:g}, got {values[name]!r}")
    return number


def _sender(value, smtp: SmtpServer | None) -> str:
    """REPORTS_FROM; by default the SMTP user when it is an address, else reports@localhost."""
    text = str(value or "").strip() or (smtp.user if smtp and "@" in smtp.user else "reports@localhost")
    if any(c in text for c in "\r\n") or "@" not in parseaddr(text)[1]:
        raise ValueError(f"REPORTS_FROM must be an email address such as 'Reports <reports@example.com>', got {value!r}")
    return text


def _zone(name) -> ZoneInfo:
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"TIMEZONE must be an IANA time zone such as Europe/Berlin, got {name!r}") from None
