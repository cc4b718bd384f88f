"""The reports page's layout: where mail goes, the subscriptions, and the form that adds or
edits one; the callbacks (callbacks.py) fill the list in."""

from dash import dcc, html

from dashboard.confirm import ConfirmStep
from dashboard.context import current_context
from dashboard.pages.reports.ids import (
    AT,
    BACK,
    BUSY,
    CANCEL,
    CHANGED,
    CONFIRM,
    CONFIRM_BOX,
    CONFIRM_TEXT,
    DAY,
    DAY_FIELD,
    DOWNLOAD,
    EDITING,
    FORM,
    FORM_RESULT,
    FORM_TITLE,
    FREQUENCY,
    INTERVAL,
    MESSAGE,
    NAME,
    PATH,
    PERIOD_NOTE,
    RECIPIENTS,
    RESULT,
    SAVE,
    SCROLL,
    STATE,
    SUMMARY,
    TABLE,
    TARGET,
    TITLE,
    VIEW,
    WEEKDAY,
    WEEKDAY_FIELD,
    error,
)
from reports.schedule import FREQUENCIES, WEEKDAYS

REFRESH_MS = 10_000  # sends made by the scheduler (any process) show within this
CONFIRM_STEP = ConfirmStep(CONFIRM_BOX, CONFIRM_TEXT, CONFIRM, BACK, "reports-confirm")
NEW_TITLE = "Add a subscription"


def layout(path: str = PATH) -> html.Div:
    settings = current_context().settings
    return html.Div(className="reports", children=[
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P(className="muted reports-intro", children=[
            "Email the live page's figures on a schedule: the key figures, the revenue chart and a CSV, for the "
            "last whole day, week or month, in ", html.Code(settings.timezone.key), ". ", *_mail_line(settings)]),
        html.Section(className="panel reports-list", children=[
            html.H2("Subscriptions"),
            html.P(id=SUMMARY, className="muted", children="Loading…"),
            html.Div(id=MESSAGE, className="message hidden", role="alert"),
            html.Div(id=BUSY, role="status", className="reports-busy"),
            html.Div(id=RESULT, role="status"),
            CONFIRM_STEP.box_layout("Confirm the deletion", "Delete subscription", danger=True, nested=True),
            html.Div(id=TABLE, className="reports-table"),
        ]),
        form(),
        dcc.Store(id=EDITING, data=None),
        dcc.Store(id=TARGET, data=None),
        dcc.Store(id=CHANGED, data=None),
        dcc.Store(id=STATE, data={}),
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS),
        dcc.Download(id=DOWNLOAD),
        html.Span(id=SCROLL, className="hidden"),
    ])


def _mail_line(settings) -> list:
    if settings.smtp is None:
        return [html.Strong("Sending is off: SMTP_URL is not set."), " Download still gives each email as a file."]
    return ["Mail goes through ", html.Code(str(settings.smtp)), " from ", html.Code(settings.reports_from), "."]


def form() -> html.Section:
    return html.Section(id=FORM, className="panel reports-form", children=[
        html.H2(NEW_TITLE, id=FORM_TITLE),
        _field("Name", NAME, "name", dcc.Input(id=NAME, type="text", maxLength=80, autoComplete="off",
                                               placeholder="Weekly sales")),
        _field("Recipients", RECIPIENTS, "recipients",
               dcc.Textarea(id=RECIPIENTS, placeholder="ann@example.com, bob@example.com"),
               "Email addresses, separated by commas or lines."),
        _field("Live page view", VIEW, "view", dcc.Input(id=VIEW, type="text", autoComplete="off",
                                                         placeholder="/?kind=course&method=paypal"),
               "Set the filters on the live page and paste its address; its kind and payment method are kept, "
               "the range is the report's period. Empty: every purchase."),
        html.Fieldset(className="field", children=[
            html.Legend("Frequency"),
            dcc.RadioItems(id=FREQUENCY, className="choices reports-frequency", value="daily", inline=True,
                           options=[{"label": label, "value": value} for value, label in FREQUENCIES.items()]),
            html.P(id=error("frequency"), className="field-error", role="alert"),
        ]),
        html.Div(className="reports-when", children=[
            _field(f"Time ({current_context().settings.timezone.key})", AT, "at",
                   dcc.Input(id=AT, type="text", value="08:00", maxLength=5, placeholder="08:00"), "HH:MM, 24 hours."),
            html.Div(id=WEEKDAY_FIELD, className="field hidden", children=[
                html.Label("Day of the week", htmlFor=WEEKDAY),
                dcc.Dropdown(id=WEEKDAY, options=[{"label": d, "value": n} for n, d in enumerate(WEEKDAYS)], value=0,
                             clearable=False, searchable=False),
                html.P(id=error("weekday"), className="field-error", role="alert"),
            ]),
            _field("Day of the month", DAY, "day", dcc.Input(id=DAY, type="number", min=1, max=28, step=1, value=1),
                   "1 to 28.", wrapper=DAY_FIELD, hidden=True),
        ]),
        html.P(id=PERIOD_NOTE, className="muted"),
        html.Div(className="actions", children=[
            html.Button(NEW_TITLE, id=SAVE, className="button primary", n_clicks=0),
            html.Button("Cancel", id=CANCEL, className="button hidden", n_clicks=0),
        ]),
        html.Div(id=FORM_RESULT, role="status"),
    ])


def _field(label: str, field_id: str, name: str, control, hint: str = "", wrapper: str | None = None,
           hidden: bool = False) -> html.Div:
    children = [html.Label(label, htmlFor=field_id), control]
    if hint:
        children.append(html.P(hint, className="muted"))
    children.append(html.P(id=error(name), className="field-error", role="alert"))
    extra = {"id": wrapper} if wrapper else {}
    return html.Div(className="field hidden" if hidden else "field", children=children, **extra)
