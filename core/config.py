"""Settings of core/, read from the environment when asked, never at import time."""

import os
from dataclasses import dataclass

DEFAULT_PAYMENT_METHODS = ("credit_card", "paypal", "stripe", "bank_transfer", "admin_grant")


@dataclass(frozen=True)
class CoreSettings:
    payment_methods: frozenset[str]
    currency: str
    buyers_max_age: float


def core_settings(environ=None) -> CoreSettings:
    """Read PAYMENT_METHODS (comma-separated), CURRENCY and BUYERS_MAX_AGE from the environment."""
    env = os.environ if environ is None else environ
    raw_methods = env.get("PAYMENT_METHODS", "")
    methods = [m.strip() for m in raw_methods.split(",") if m.strip()]
    return CoreSettings(
        payment_methods=frozenset(methods or DEFAULT_PAYMENT_METHODS),
        currency=env.get("CURRENCY", "USD").strip().upper() or "USD",
        buyers_max_age=float(env.get("BUYERS_MAX_AGE", "30")),
    )
