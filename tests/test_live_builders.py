"""The live page's builders, called directly: a card's money, the last sale's time, the feed of
one shared render, a poll's named reply, the kind filter's choices. No database."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.storage.schema import KINDS
from dashboard.pages import live
from dashboard.pages.live.callbacks import POLL_OUTPUTS, reply
from dashboard.pages.live.filters import KINDS as KIND_CHOICES
from dashboard.pages.live.render import Rendered, last_sale_text, money_parts

TZ = ZoneInfo("Europe/Madrid")
NOW = datetime(2025, 5, 2, 9, 30, tzinfo=UTC)


def feed_row(version: int, event: str, at: datetime) -> dict:
    return {"version": version, "event": event, "at": at, "time": "t", "user": "Ada", "item": "Python",
            "amount": "29.99 USD", "method": "PayPal"}


def test_a_card_shows_the_figure_with_the_currency_in_smaller_type():
    number, unit = money_parts(1234567.5, "USD")
    assert number == "1,234,567.50" and unit.children == " USD" and unit.className == "unit"


def test_the_last_sale_is_said_by_its_time_today_and_with_its_day_before():
    assert last_sale_text([], NOW, TZ) == "no recent sale"
    today = [feed_row(2, "Revoked", NOW), feed_row(1, "Purchase", datetime(2025, 5, 2, 7, 5, tzinfo=UTC))]
    assert last_sale_text(today, NOW, TZ) == "last sale 09:05"
    assert last_sale_text([feed_row(1, "Purchase", datetime(2025, 4, 30, 7, tzinfo=UTC))], NOW, TZ) == \
        "last sale Apr 30 09:00"


def test_one_render_marks_the_rows_a_tab_has_not_seen_and_keeps_each_table_once():
    rendered = Rendered({"updated": "last sale 09:05"}, [feed_row(5, "Purchase", NOW), feed_row(4, "Revoked", NOW)])
    assert rendered.outputs == {"updated": "last sale 09:05"}
    table = json.dumps(rendered.feed_table(4))
    assert table.count('"new purchase"') == 1 and '"revoked"' in table
    assert rendered.feed_table(4) is rendered.feed_table(4)
    assert "No purchases yet." in json.dumps(Rendered({}, []).feed_table(0))


def test_a_poll_names_its_outputs_and_refuses_others():
    answer = reply(checked=1)
    assert answer["checked"] == 1 and set(answer) == set(POLL_OUTPUTS)
    assert f"{live.AOV}.value" in POLL_OUTPUTS and live.value(live.AOV) == "live-aov-value"
    with pytest.raises(KeyError, match="not outputs"):
        reply(chart=1)


def test_the_kind_filter_offers_every_kind_of_the_table():
    assert list(KIND_CHOICES) == ["", *KINDS] and KIND_CHOICES[""] == "Courses and tests"
