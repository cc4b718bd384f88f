"""Settings of core/, read from the environment when asked, never at import time."""

import os
from dataclasses import dataclass

DEFAULT_PAYMENT_METHODS = ("credit_card", "paypal", "stripe", "bank_transfer", "admin_grant")


@dataclass(frozen=True)
class CoreSettings:
    payment_methods: frozenset[str]
    currency: str


def core_settings(environ=None) -> CoreSettings:
    """Read PAYMENT_METHODS (comma-separated) and CURRENCY from the environment."""
    env = os.environ if environ is None else environ
    raw_methods = env.get("PAYMENT_METHODS", "")
    methods = [m.strip() for m in raw_methods.split(",") if m.strip()]
    return CoreSettings(
        payment_methods=frozenset(methods or DEFAULT_PAYMENT_METHODS),
        currency=env.get("CURRENCY", "USD").strip().upper() or "USD",
    )
