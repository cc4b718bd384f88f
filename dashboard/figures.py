"""Pure figure builders: rows in, Plotly figure dicts out. No database, no Dash callbacks.

Plain dicts rather than plotly.graph_objects: a poll rebuilds a dozen figures, and
graph_objects' validation costs about 12 ms a figure where a dict costs microseconds.
"""

import html

from dashboard.display import method_label, money_text

BLUE, TEAL, AMBER, ROSE, GREY, INK = "#2563eb", "#0d9488", "#d97706", "#e11d48", "#94a3b8", "#1f2933"
PALETTE = [BLUE, TEAL, AMBER, ROSE, GREY, "#7c3aed", "#0891b2"]
GRID = "#eef0f3"
EMPTY_MESSAGE = "No purchases in this range"
LOADING_MESSAGE = "Loading…"
TICK_FORMAT = {"hour": "%H:%M<br>%b %d", "day": "%b %d", "week": "%b %d", "month": "%b %Y"}
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": INK}


def label_text(text) -> str:
    """Text for a label or hover: Plotly renders a subset of HTML in them (a title holding
    `<a href>` became a link), so markup is shown as the characters it is."""
    return html.escape(str(text), quote=False)


def _axis(**extra) -> dict:
    return {"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID, "automargin": True, **extra}


def _figure(data: list, *, height: int = 300, legend: bool = False, **layout) -> dict:
    base = {
        "height": height,
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "font": FONT,
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "showlegend": legend,
        "legend": {"orientation": "h", "y": -0.15},
        "hoverlabel": {"bgcolor": "white"},
        "xaxis": _axis(),
        "yaxis": _axis(),
    }
    return {"data": data, "layout": {**base, **layout}}


def empty_figure(message: str = EMPTY_MESSAGE, height: int = 300) -> dict:
    """A figure that says why it is empty instead of showing a bare axis.

    `meta.state` tells tests and the screenshot script it is drawn empty on purpose.
    """
    return _figure(
        [],
        height=height,
        annotations=[{"text": message, "showarrow": False, "font": {"size": 15, "color": GREY}, "x": 0.5, "y": 0.5,
                      "xref": "paper", "yref": "paper"}],
        xaxis={"visible": False},
        yaxis={"visible": False},
        meta={"state": "loading" if message == LOADING_MESSAGE else "empty"},
    )


def revenue_figure(rows: list[dict], granularity: str, currency: str) -> dict:
    """Revenue per bucket as bars (empty buckets drawn as zeros), purchases on hover."""
    if not any(row["count"] for row in rows):
        return empty_figure()
    bars = {
        "type": "bar",
        "x": [row["period"].isoformat() for row in rows],
        "y": [row["revenue"] for row in rows],
        "customdata": [row["count"] for row in rows],
        "marker": {"color": BLUE},
        "hovertemplate": f"%{{x}}<br>%{{y:,.2f}} {currency}<br>%{{customdata}} purchases<extra></extra>",
    }
    return _figure([bars], height=320, xaxis=_axis(tickformat=TICK_FORMAT[granularity], type="date"),
                   yaxis=_axis(title={"text": f"Revenue ({currency})"}, tickformat=",.0f"))


def kind_figure(figures: dict, currency: str) -> dict:
    """Courses against tests: purchases and revenue side by side."""
    if not figures["totalPurchases"]:
        return empty_figure()
    labels = ["Courses", "Tests"]
    counts = [figures["coursePurchases"], figures["testPurchases"]]
    revenue = [figures["courseRevenue"], figures["testRevenue"]]
    common = {"type": "bar", "x": labels, "marker": {"color": [BLUE, TEAL]}, "textposition": "outside",
              "cliponaxis": False, "textfont": {"size": 11}}
    data = [
        {**common, "name": "Purchases", "y": counts, "text": [f"{c:,}" for c in counts],
         "hovertemplate": "%{x}: %{y:,} purchases<extra></extra>"},
        {**common, "name": "Revenue", "y": revenue, "opacity": 0.6, "text": [f"{r:,.0f}" for r in revenue],
         "hovertemplate": f"%{{x}}: %{{y:,.2f}} {currency}<extra></extra>", "xaxis": "x2", "yaxis": "y2"},
    ]
    return _figure(
        data,
        margin={"l": 8, "r": 8, "t": 22, "b": 8},
        xaxis=_axis(domain=[0, 0.44]),
        xaxis2=_axis(domain=[0.56, 1]),
        yaxis=_axis(title={"text": "Purchases"}, tickformat=",.0f"),
        yaxis2=_axis(anchor="x2", title={"text": f"Revenue ({currency})"}, tickformat="~s"),
    )


def top_items_figure(rows: list[dict], currency: str, color: str = BLUE) -> dict:
    """Best sellers by title as horizontal bars, the best on top."""
    if not rows:
        return empty_figure()
    rows = list(reversed(rows))
    bars = {
        "type": "bar",
        "orientation": "h",
        "x": [row["count"] for row in rows],
        "y": [label_text(row["title"]) for row in rows],
        "marker": {"color": color},
        "text": [f"{row['count']:,}" for row in rows],
        "textposition": "auto",
        "customdata": [money_text(row["revenue"], currency) for row in rows],
        "hovertemplate": "%{y}<br>%{x:,} purchases<br>%{customdata}<extra></extra>",
    }
    return _figure([bars], height=max(220, 34 * len(rows) + 60), xaxis=_axis(title={"text": "Purchases"}))


def payment_figure(rows: list[dict], currency: str) -> dict:
    """Share of purchases by payment method; revenue on hover."""
    if not rows:
        return empty_figure()
    pie = {
        "type": "pie",
        "labels": [label_text(method_label(row["paymentMethod"])) for row in rows],
        "values": [row["count"] for row in rows],
        "customdata": [money_text(row["revenue"], currency) for row in rows],
        "hole": 0.55,
        "sort": False,
        "marker": {"colors": PALETTE[: len(rows)]},
        "texttemplate": "%{percent:.0%}",
        "textposition": "inside",
        "hovertemplate": "%{label}<br>%{value:,} purchases (%{percent})<br>%{customdata}<extra></extra>",
    }
    return _figure([pie], legend=True)


def buyers_figure(buyers: dict) -> dict:
    """Buyers with one purchase in the range against buyers with more."""
    new, repeat = buyers["newBuyers"], buyers["repeatBuyers"]
    if not new and not repeat:
        return empty_figure()
    bars = {
        "type": "bar",
        "orientation": "h",
        "x": [new, repeat],
        "y": ["One purchase", "Repeat buyers"],
        "marker": {"color": [AMBER, BLUE]},
        "text": [f"{new:,}", f"{repeat:,}"],
        "textposition": "auto",
        "hovertemplate": "%{y}: %{x:,}<extra></extra>",
    }
    return _figure([bars], height=220, xaxis=_axis(title={"text": "Buyers"}))


def comped_figure(figures: dict) -> dict:
    """Paid purchases against free (zero-amount) grants."""
    if not figures["totalPurchases"]:
        return empty_figure()
    comped = figures["comped"]["count"]
    pie = {
        "type": "pie",
        "labels": ["Paid", "Free grants"],
        "values": [figures["totalPurchases"] - comped, comped],
        "hole": 0.55,
        "sort": False,
        "marker": {"colors": [BLUE, GREY]},
        "texttemplate": "%{value:,}",
        "textposition": "inside",
        "hovertemplate": "%{label}: %{value:,} (%{percent})<extra></extra>",
    }
    return _figure([pie], height=220, legend=True)


def spark_heights(values: list[float]) -> list[int]:
    """Bar heights in percent of the largest value, for a KPI card's trend (drawn in CSS)."""
    top = max(values, default=0)
    return [round(v / top * 100) if top > 0 else 0 for v in values]
