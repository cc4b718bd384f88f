"""Pure figure builders: rows in, Plotly figures out. No database, no Dash callbacks."""

import plotly.graph_objects as go

BLUE, TEAL, AMBER, ROSE, GREY, INK = "#2563eb", "#0d9488", "#d97706", "#e11d48", "#94a3b8", "#1f2933"
KIND_COLORS = {"Courses": BLUE, "Tests": TEAL}
METHOD_LABELS = {"credit_card": "Credit card", "paypal": "PayPal", "stripe": "Stripe",
                 "bank_transfer": "Bank transfer", "admin_grant": "Admin grant"}
EMPTY_MESSAGE = "No purchases in this range"
LOADING_MESSAGE = "Loading…"
TICK_FORMAT = {"hour": "%H:%M<br>%b %d", "day": "%b %d", "week": "%b %d", "month": "%b %Y"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " ").capitalize())


def money_text(amount: float, currency: str) -> str:
    """Money for display: cents, thousands separators, the currency; never "-0.00"."""
    amount = 0.0 if abs(amount) < 0.005 else amount
    return f"{amount:,.2f} {currency}"


def _layout(fig: go.Figure, *, height: int = 300, legend: bool = False) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": INK},
        showlegend=legend,
        legend={"orientation": "h", "y": -0.15},
        hoverlabel={"bgcolor": "white"},
        separators=".,",
    )
    return fig


def empty_figure(message: str = EMPTY_MESSAGE, height: int = 300) -> go.Figure:
    """A figure that says why it is empty instead of showing a bare axis."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 15, "color": GREY}, x=0.5, y=0.5,
                       xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    # tells tests and the screenshot script that this figure is drawn on purpose without data
    fig.update_layout(meta={"state": "loading" if message == LOADING_MESSAGE else "empty"})
    return _layout(fig, height=height)


def revenue_figure(rows: list[dict], granularity: str, currency: str) -> go.Figure:
    """Revenue per bucket as bars (empty buckets drawn as zeros), purchases on hover."""
    if not any(row["count"] for row in rows):
        return empty_figure()
    fig = go.Figure(go.Bar(
        x=[row["period"] for row in rows],
        y=[row["revenue"] for row in rows],
        customdata=[row["count"] for row in rows],
        marker_color=BLUE,
        hovertemplate=f"%{{x}}<br>%{{y:,.2f}} {currency}<br>%{{customdata}} purchases<extra></extra>",
    ))
    fig.update_xaxes(tickformat=TICK_FORMAT[granularity])
    fig.update_yaxes(title_text=f"Revenue ({currency})", tickformat=",.0f")
    return _layout(fig, height=320)


def kind_figure(figures: dict, currency: str) -> go.Figure:
    """Courses against tests: purchases and revenue side by side."""
    if not figures["totalPurchases"]:
        return empty_figure()
    labels = ["Courses", "Tests"]
    counts = [figures["coursePurchases"], figures["testPurchases"]]
    revenue = [figures["courseRevenue"], figures["testRevenue"]]
    fig = go.Figure([
        go.Bar(name="Purchases", x=labels, y=counts, marker_color=[BLUE, TEAL], text=[f"{c:,}" for c in counts],
               textposition="outside", cliponaxis=False, hovertemplate="%{x}: %{y:,} purchases<extra></extra>",
               xaxis="x", yaxis="y"),
        go.Bar(name="Revenue", x=labels, y=revenue, marker_color=[BLUE, TEAL], opacity=0.6,
               text=[f"{r:,.0f}" for r in revenue], textposition="outside", cliponaxis=False,
               hovertemplate=f"%{{x}}: %{{y:,.2f}} {currency}<extra></extra>", xaxis="x2", yaxis="y2"),
    ])
    fig.update_layout(
        xaxis={"domain": [0, 0.44]}, xaxis2={"domain": [0.56, 1]},
        yaxis={"title": "Purchases", "tickformat": ",.0f"},
        yaxis2={"anchor": "x2", "title": f"Revenue ({currency})", "tickformat": "~s"},
    )
    fig.update_traces(textfont_size=11)
    return _layout(fig).update_layout(margin={"t": 22})


def top_items_figure(rows: list[dict], currency: str, color: str = BLUE) -> go.Figure:
    """Best sellers by title as horizontal bars, the best on top."""
    if not rows:
        return empty_figure()
    rows = list(reversed(rows))
    fig = go.Figure(go.Bar(
        x=[row["count"] for row in rows],
        y=[row["title"] for row in rows],
        orientation="h",
        marker_color=color,
        text=[f"{row['count']:,}" for row in rows],
        textposition="auto",
        customdata=[money_text(row["revenue"], currency) for row in rows],
        hovertemplate="%{y}<br>%{x:,} purchases<br>%{customdata}<extra></extra>",
    ))
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(title_text="Purchases")
    return _layout(fig, height=max(220, 34 * len(rows) + 60))


def payment_figure(rows: list[dict], currency: str) -> go.Figure:
    """Share of purchases by payment method; revenue in labels and hover."""
    if not rows:
        return empty_figure()
    fig = go.Figure(go.Pie(
        labels=[method_label(row["paymentMethod"]) for row in rows],
        values=[row["count"] for row in rows],
        customdata=[money_text(row["revenue"], currency) for row in rows],
        hole=0.55,
        sort=False,
        marker={"colors": [BLUE, TEAL, AMBER, ROSE, GREY, "#7c3aed", "#0891b2"][: len(rows)]},
        texttemplate="%{percent:.0%}",
        textposition="inside",
        hovertemplate="%{label}<br>%{value:,} purchases (%{percent})<br>%{customdata}<extra></extra>",
    ))
    return _layout(fig, legend=True)


def buyers_figure(buyers: dict) -> go.Figure:
    """Buyers with one purchase in the range against buyers with more."""
    new, repeat = buyers["newBuyers"], buyers["repeatBuyers"]
    if not new and not repeat:
        return empty_figure()
    fig = go.Figure(go.Bar(
        x=[new, repeat], y=["One purchase", "Repeat buyers"], orientation="h", marker_color=[AMBER, BLUE],
        text=[f"{new:,}", f"{repeat:,}"], textposition="auto", hovertemplate="%{y}: %{x:,}<extra></extra>",
    ))
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(title_text="Buyers")
    return _layout(fig, height=220)


def comped_figure(figures: dict) -> go.Figure:
    """Paid purchases against free (zero-amount) grants."""
    comped = figures["comped"]["count"]
    paid = figures["totalPurchases"] - comped
    if not figures["totalPurchases"]:
        return empty_figure()
    fig = go.Figure(go.Pie(
        labels=["Paid", "Free grants"], values=[paid, comped], hole=0.55, sort=False,
        marker={"colors": [BLUE, GREY]}, texttemplate="%{label}<br>%{value:,}",
        hovertemplate="%{label}: %{value:,} (%{percent})<extra></extra>",
    ))
    return _layout(fig, height=220, legend=False)


def sparkline(values: list[float], color: str = BLUE) -> go.Figure:
    """A tiny line without axes, for a KPI card's trend."""
    fig = go.Figure(go.Scatter(y=values, mode="lines", line={"color": color, "width": 2}, fill="tozeroy",
                               fillcolor="rgba(37, 99, 235, 0.08)", hoverinfo="skip"))
    fig.update_xaxes(visible=False, fixedrange=True)
    fig.update_yaxes(visible=False, fixedrange=True, rangemode="tozero")
    fig.update_layout(height=44, margin={"l": 0, "r": 0, "t": 2, "b": 2}, template="plotly_white", showlegend=False,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig
