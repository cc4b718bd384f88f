"""What the insights page draws from core's cohort and retention figures: the heatmap (a table
whose cells are shaded by their value, so every figure is printed, exact, and readable without
colour), the rows of its grid and CSV, and the retention cards. Pure: figures in, components out."""

import io
from datetime import datetime, timedelta

from dash import html

from dashboard import spreadsheet
from dashboard.display import money_text

METRICS = {"share": "Share of the cohort buying", "revenue": "Revenue per buyer, cumulative"}
CSV_FIELDS = ("cohort", "cohort_start", "cohort_buyers", "period", "buyers", "share", "revenue", "cumulative_revenue",
              "cumulative_revenue_per_buyer")


def cohort_label(cohort: datetime, period: str) -> str:
    """"2026-03" for a month, "2026-W10" for an ISO week (the week of its Monday)."""
    if period == "week":
        year, week, _ = cohort.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{cohort:%Y-%m}"


def offset_label(offset: int, period: str) -> str:
    return f"{'Month' if period == 'month' else 'Week'} {offset}"


def cohort_rows(figures: dict) -> list[dict]:
    """One row per cohort and period that has buyers: the heatmap's cells as data, for the grid
    and the CSV. Shares and per-buyer money are of the cohort's size (its period 0)."""
    rows, period = [], figures["period"]
    for cohort in figures["cohorts"]:
        size, cumulative = cohort["buyers"], 0.0
        for cell in cohort["periods"]:
            cumulative = round(cumulative + cell["revenue"], 6)
            rows.append({
                "id": f"{cohort['cohort']:%Y-%m-%d}|{cell['offset']}",
                "cohort": cohort_label(cohort["cohort"], period), "start": f"{cohort['cohort']:%Y-%m-%d}",
                "size": size, "offset": cell["offset"], "buyers": cell["buyers"],
                "share": cell["buyers"] / size if size else 0.0, "revenue": cell["revenue"],
                "cumulative": cumulative, "perBuyer": cumulative / size if size else 0.0,
            })
    return rows


def period_start(cohort: datetime, offset: int, period: str) -> datetime:
    """The start of the period `offset` periods after the cohort's."""
    if period == "week":
        return cohort + timedelta(weeks=offset)
    months = cohort.year * 12 + cohort.month - 1 + offset
    return cohort.replace(year=months // 12, month=months % 12 + 1)


def heatmap(figures: dict, metric: str, currency: str, now: datetime | None = None) -> html.Div:
    """Cohorts down, periods since across; each cell shaded by its share of the largest value.
    A period that has not begun at `now` is left blank; one that has, without buyers, is 0."""
    period, cohorts = figures["period"], figures["cohorts"]
    if not cohorts:
        return html.Div(className="heatmap-empty muted", children="No buyers in these cohorts.")
    rows = cohort_rows(figures)
    cells = {(row["start"], row["offset"]): row for row in rows}
    width = 1 + max(row["offset"] for row in rows)
    value = (lambda row: row["share"]) if metric == "share" else (lambda row: row["perBuyer"])
    largest = max((value(row) for row in rows), default=0) or 1
    head = html.Tr([html.Th("Cohort", scope="col"), html.Th("Buyers", scope="col", className="num"),
                    *[html.Th(offset_label(offset, period), scope="col", className="num") for offset in range(width)]])
    body = []
    for cohort in cohorts:
        start = f"{cohort['cohort']:%Y-%m-%d}"
        running = None
        line = [html.Th(cohort_label(cohort["cohort"], period), scope="row"), html.Td(f"{cohort['buyers']:,}",
                                                                                      className="num")]
        for offset in range(width):
            row = cells.get((start, offset))
            running = row if row is not None else running
            if now is not None and period_start(cohort["cohort"], offset, period) > now:
                line.append(html.Td("", className="num"))  # not yet
            elif metric == "revenue" and running is not None:  # cumulative: a quiet period keeps the sum so far
                line.append(_cell(money_text(running["perBuyer"], currency), running["perBuyer"] / largest))
            elif metric == "share":
                buyers = row["buyers"] if row is not None else 0
                share = row["share"] if row is not None else 0.0
                line.append(_cell(f"{share:.1%}", share / largest, f"{buyers:,} buyers"))
            else:
                line.append(html.Td("", className="num"))
        body.append(html.Tr(line))
    return html.Div(className="heatmap-scroll", tabIndex=0, role="region", **{"aria-label": METRICS[metric]}, children=[
        html.Table(className="heatmap", children=[html.Caption(METRICS[metric]), html.Thead(head), html.Tbody(body)]),
    ])


HEAT = (37, 99, 235)  # the page's blue, laid over white more thickly the stronger the cell
TEXTS = ("#0b1f4d", "#ffffff", "#000000")  # the first that reads on a shade (WCAG AA: 4.5:1) is used


def _cell(text: str, strength: float, title: str | None = None) -> html.Td:
    strength = min(max(strength, 0.0), 1.0)
    alpha = 0.08 + 0.82 * strength
    shade = tuple(round(255 - alpha * (255 - c)) for c in HEAT)
    # navy on the light shades, white on the dark ones; in the band where neither reaches
    # 4.5:1 (around 85% blue), black does
    ink = next((t for t in TEXTS if contrast(shade, t) >= 4.5), TEXTS[-1])
    return html.Td(text, className="num heat", title=title,
                   style={"backgroundColor": "#{:02x}{:02x}{:02x}".format(*shade), "color": ink})


def contrast(rgb: tuple[int, int, int], ink: str) -> float:
    """WCAG's contrast ratio of a colour and a #rrggbb text colour."""
    lighter, darker = sorted((_luminance(rgb), _luminance(tuple(int(ink[i:i + 2], 16) for i in (1, 3, 5)))),
                             reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(rgb) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def cohort_csv(figures: dict) -> str:
    out = io.StringIO()
    writer = spreadsheet.Writer(out)
    writer.writerow(CSV_FIELDS)
    for row in cohort_rows(figures):
        writer.writerow([row["cohort"], row["start"], row["size"], row["offset"], row["buyers"], f"{row['share']:.4f}",
                         f"{row['revenue']:.2f}", f"{row['cumulative']:.2f}", f"{row['perBuyer']:.2f}"])
    return out.getvalue()


def retention_cards(figures: dict) -> list[html.Div]:
    median = figures["median_days_to_second"]
    return [
        _card("Buyers", f"{figures['buyers']:,}", "with a purchase that counts"),
        _card("Repeat buyers", f"{figures['repeat_rate']:.1%}", "bought twice or more"),
        _card("Days to a second purchase", "—" if median is None else f"{median:g}", "median, over repeat buyers"),
        _card("Lapsed", f"{figures['lapsed_90d']:,}", "no purchase in the last 90 days"),
    ]


def _card(title: str, value: str, note: str) -> html.Div:
    return html.Div(className="card insight-card", children=[
        html.H2(title), html.P(value, className="value"), html.P(note, className="note"),
    ])
