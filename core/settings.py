"""The settings core/ needs, handed to it by the caller: core never reads the environment."""

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_PAYMENT_METHODS = frozenset({"credit_card", "paypal", "stripe", "bank_transfer", "admin_grant"})


@dataclass(frozen=True)
class CoreSettings:
    """What purchases may be paid with, their default currency, how old buyer figures may be.

    Core functions that need settings take them as `settings=`; without one they use these
    defaults.
    """

    payment_methods: frozenset[str] = field(default=DEFAULT_PAYMENT_METHODS)
    currency: str = "USD"
    buyers_max_age: float = 30.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> "CoreSettings":
        """Parse PAYMENT_METHODS (comma-separated), CURRENCY and BUYERS_MAX_AGE from strings."""
        methods = frozenset(m.strip() for m in str(values.get("PAYMENT_METHODS") or "").split(",") if m.strip())
        currency = str(values.get("CURRENCY") or "USD").strip().upper()
        if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
            raise ValueError(f"CURRENCY must be a 3-letter code such as USD, got {values.get('CURRENCY')!r}")
        try:
            max_age = float(values.get("BUYERS_MAX_AGE") or 30)
        except ValueError:
            raise ValueError(f"BUYERS_MAX_AGE must be a number of seconds, got {values.get('BUYERS_MAX_AGE')!r}") from None
        return cls(payment_methods=methods or DEFAULT_PAYMENT_METHODS, currency=currency, buyers_max_age=max_age)


DEFAULT_SETTINGS = CoreSettings()
