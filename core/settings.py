"""The settings core/ needs, handed to it by the caller: core never reads the environment."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

DEFAULT_PAYMENT_METHODS = frozenset({"credit_card", "paypal", "stripe", "bank_transfer", "admin_grant"})
FREE_METHOD = "admin_grant"  # free access given by staff: the amount is 0, and only then


@dataclass(frozen=True)
class CoreSettings:
    """What purchases may be paid with, their default currency, how old buyer figures may be.

    Core functions that need settings take them as `settings=`; without one they use these
    defaults.
    """

    payment_methods: frozenset[str] = field(default=DEFAULT_PAYMENT_METHODS)
    currency: str = "USD"
    buyers_max_age: float = 30.0
    earliest_purchase: datetime = datetime(2000, 1, 1, tzinfo=UTC)  # purchasedAt from here to a day ahead
    max_amount: float = 1_000_000.0  # in the currency's major unit

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
        try:
            earliest = datetime.combine(date.fromisoformat(str(values.get("EARLIEST_PURCHASE") or "2000-01-01")),
                                        time.min, tzinfo=UTC)
        except ValueError:
            raise ValueError(f"EARLIEST_PURCHASE must be a date such as 2000-01-01, got {values.get('EARLIEST_PURCHASE')!r}") from None
        try:
            max_amount = float(values.get("MAX_AMOUNT") or 1_000_000)
        except ValueError:
            max_amount = -1.0
        if not 0 < max_amount < 1e15:
            raise ValueError(f"MAX_AMOUNT must be a positive number below 1e15, got {values.get('MAX_AMOUNT')!r}")
        return cls(payment_methods=methods or DEFAULT_PAYMENT_METHODS, currency=currency, buyers_max_age=max_age,
                   earliest_purchase=earliest, max_amount=max_amount)


DEFAULT_SETTINGS = CoreSettings()
