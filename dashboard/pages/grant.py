"""Grant access: pick a customer and a course or test, say what was paid, review, confirm.

The form view carries one idempotency key, made when the page is drawn and renewed only
after "Grant another": a double click, a network retry or a replayed request grants once.
"""

import contextlib
import logging
import secrets

from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from core import AlreadyPurchasedError, ItemRef, PurchaseError, ValidationError, create_purchase
from core.catalog import list_items
from core.customers import find_customers, get_customer, owned_items
from core.settings import FREE_METHOD
from core.validation import payment_problems, read_amount
from dashboard.auth import require_admin
from dashboard.callback_requests import text as as_text
from dashboard.confirm import ConfirmStep
from dashboard.context import DashboardContext, current_context
from dashboard.display import method_label, money_text
from dashboard.messages import shown
from dashboard.query import query_arg

PATH = "/grant"
TITLE = "Grant access"
NAV = "Grant"
ROLE = "admin"

URL = "grant-url"
USER = "grant-user"
ITEM = "grant-item"
MODE = "grant-mode"
PAID_BOX = "grant-paid-box"
AMOUNT = "grant-amount"
METHOD = "grant-method"
DISCOUNT = "grant-discount"
NOTE = "grant-note"
REVIEW = "grant-review"
FORM = "admin-grant-form"
CONFIRM_BOX = "admin-grant-confirm-box"
CONFIRM_TEXT = "admin-grant-confirm-text"
CONFIRM = "grant-confirm"
BACK = "grant-back"
ANOTHER = "grant-another"
KEY = "admin-grant-key"
RESULT = "admin-grant-result"
FIELDS = ("user", "item", "amount", "method", "discount", "note")
# core's names of the grant's arguments -> the form's fields (dashboard.messages.argument)
FORM_FIELDS = {"user_id": "user", "item": "item", "amount": "amount", "paymentMethod": "method",
               "discountCode": "discount", "note": "note"}


def error_id(field: str) -> str:
    return f"admin-grant-{field}-error"


STEP = ConfirmStep(box=CONFIRM_BOX, text=CONFIRM_TEXT, confirm=CONFIRM, back=BACK, box_class="panel confirm",
                   form=FORM, form_class="panel form", result=RESULT, fields=FIELDS, error_id=error_id)
COMPLIMENTARY, PAID = "complimentary", "paid"
log = logging.getLogger(__name__)


def default_method(context: DashboardContext) -> str | None:
    """The payment method the form starts with: the first paid one."""
    paid_methods = sorted(m for m in context.payment_methods if m != FREE_METHOD)
    return paid_methods[0] if paid_methods else None


def layout(path: str = PATH) -> html.Div:
    context = current_context()
    paid_methods = sorted(m for m in context.payment_methods if m != FREE_METHOD)
    return html.Div(className="grant", children=[
        dcc.Location(id=URL, refresh=False),
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P("Give a customer a course or a test: free, or for a payment taken elsewhere. "
               "Nothing is written until you confirm.", className="muted"),
        dcc.Store(id=KEY, data=secrets.token_urlsafe(16)),
        html.Section(id=FORM, className="panel form", children=[
            _field("Customer", USER, dcc.Dropdown(id=USER, placeholder="Type a name, email or id…", searchable=True,
                                                 clearable=True, options=[])),
            _field("Course or test", ITEM, dcc.Dropdown(id=ITEM, placeholder="Search by title…", searchable=True,
                                                       clearable=True, options=[])),
            html.Fieldset(className="field", children=[
                html.Legend("What was paid"),
                dcc.RadioItems(id=MODE, className="choices", value=COMPLIMENTARY, options=[
                    {"label": "Complimentary: free access (amount 0, admin grant)", "value": COMPLIMENTARY},
                    {"label": "A payment taken elsewhere", "value": PAID},
                ]),
            ]),
            html.Div(id=PAID_BOX, className="hidden", children=[
                _field(f"Amount ({context.currency})", AMOUNT,
                       dcc.Input(id=AMOUNT, type="text", inputMode="decimal", placeholder="29.99", debounce=False)),
                _field("Payment method", METHOD, dcc.Dropdown(
                    id=METHOD, clearable=False, searchable=False, value=default_method(context),
                    options=[{"label": method_label(m), "value": m} for m in paid_methods])),
            ]),
            _field("Discount code (optional)", DISCOUNT, dcc.Input(id=DISCOUNT, type="text", maxLength=200)),
            _field("Note (optional)", NOTE, dcc.Textarea(id=NOTE, maxLength=200, placeholder="Why, for the audit log")),
            html.Button("Review grant", id=REVIEW, className="button primary", n_clicks=0),
        ]),
        STEP.box_layout("Confirm the grant", "Confirm grant"),
        html.Div(id=RESULT, role="status"),
        html.Button("Grant another", id=ANOTHER, className="button hidden", n_clicks=0),
    ])


def _field(label: str, name: str, control) -> html.Div:
    field = name.removeprefix("grant-")
    return html.Div(className="field", children=[
        html.Label(label, htmlFor=name), control, html.P(id=error_id(field), className="field-error"),
    ])


def register(app, context: DashboardContext) -> None:
    db, settings = context.db, context.settings.core

    @app.callback(Output(USER, "options"), Input(USER, "search_value"), State(USER, "value"), State(USER, "options"))
    def search_users(text, chosen, options):
        """Type-ahead: the customers whose email, name or id starts with what was typed."""
        if not text or len(text.strip()) < 2:
            raise PreventUpdate
        try:
            found = [_user_option(doc) for doc in find_customers(db, text, limit=10)]
        except PurchaseError:
            raise PreventUpdate from None
        kept = [o for o in options or [] if o["value"] == chosen]
        return kept + [o for o in found if o["value"] != chosen]

    @app.callback(Output(USER, "value"), Output(USER, "options", allow_duplicate=True), Input(URL, "search"),
                  prevent_initial_call="initial_duplicate")
    def preselect(search):
        """/grant?user=<id> opens the form for that customer."""
        wanted = query_arg(search, "user")
        if not wanted:
            raise PreventUpdate
        try:
            doc = get_customer(db, wanted)
        except PurchaseError:
            raise PreventUpdate from None
        return str(doc["_id"]), [_user_option(doc)]

    @app.callback(Output(ITEM, "options"), Input(USER, "value"))
    def items(user):
        """Every course and test with its price, and whether the chosen customer owns it."""
        owned = set()
        if user:
            with contextlib.suppress(PurchaseError):  # no such customer: every item is on offer
                owned = set(owned_items(get_customer(db, user)))
        return [_item_option(item, owned, context.currency) for item in list_items(db)]

    @app.callback(Output(PAID_BOX, "className"), Input(MODE, "value"))
    def paid_fields(mode):
        return "" if mode == PAID else "hidden"

    outputs = {
        **STEP.outputs(),
        "another": Output(ANOTHER, "className"),
        "key": Output(KEY, "data"),
        # "Grant another" empties the form but for the customer: nothing of the last grant is carried over
        "itemValue": Output(ITEM, "value"),
        "modeValue": Output(MODE, "value"),
        "amountValue": Output(AMOUNT, "value"),
        "methodValue": Output(METHOD, "value"),
        "discountValue": Output(DISCOUNT, "value"),
        "noteValue": Output(NOTE, "value"),
    }

    @app.callback(
        output=outputs,
        inputs={"review": Input(REVIEW, "n_clicks"), "confirm": Input(CONFIRM, "n_clicks"),
                "back": Input(BACK, "n_clicks"), "another": Input(ANOTHER, "n_clicks")},
        state={"user": State(USER, "value"), "item": State(ITEM, "value"), "mode": State(MODE, "value"),
               "amount": State(AMOUNT, "value"), "method": State(METHOD, "value"),
               "discount": State(DISCOUNT, "value"), "note": State(NOTE, "value"), "key": State(KEY, "data")},
        prevent_initial_call=True,
    )
    def submit(review, confirm, back, another, user, item, mode, amount, method, discount, note, key):
        """Review checks the form, Confirm grants (once per key), Back edits, Grant another starts over."""
        actor = require_admin()
        reply = {name: no_update for name in outputs}
        trigger = ctx.triggered_id
        if trigger == BACK:
            return {**reply, **STEP.editing()}
        if trigger == ANOTHER:
            return {**reply, **STEP.refused({}), "another": "button hidden", "key": secrets.token_urlsafe(16),
                    "itemValue": None, "modeValue": COMPLIMENTARY, "amountValue": "",
                    "methodValue": default_method(context), "discountValue": "", "noteValue": ""}
        request, errors = read_form(user, item, mode, amount, method, discount, note, context)
        if errors:
            return {**reply, **STEP.refused(errors)}
        if trigger == REVIEW:
            # at confirm, core says it (a replay of this form's own grant is not "already owned")
            owned = already_owned(db, request)
            if owned:
                return {**reply, **STEP.refused({"item": owned})}
            return {**reply, **STEP.reviewing(describe(request, context))}
        if trigger != CONFIRM or not isinstance(key, str) or not key:
            raise PreventUpdate
        try:
            purchase = grant(db, request, actor, key, settings)
        except PurchaseError as error:
            said = shown(error, FORM_FIELDS)
            # another admin's grant of the same item won the race: say it with the customer's name, not ids
            text = (already_owned(db, request) or said.text) if isinstance(error, AlreadyPurchasedError) else said.text
            return {**reply, **STEP.failed(said.field, text)}
        except Exception:  # noqa: BLE001 - logged with its traceback; the admin gets one honest line
            log.exception("grant failed")
            return {**reply, "result": html.P("The grant could not be saved; see the server log. Nothing was "
                                              "granted twice: confirming again is safe.", className="message")}
        return {**reply, **STEP.errors({}), "form": "panel form hidden", "confirmBox": "panel confirm hidden",
                "result": _granted(purchase, request, context), "another": "button"}


def read_form(user, item, mode, amount, method, discount, note, context) -> tuple[dict, dict]:
    """The grant the form asks for, and the problems with it, by field; nothing is read or written."""
    errors, request = {}, {"discount": as_text(discount).strip() or None, "note": as_text(note).strip() or None}
    if not user:
        errors["user"] = "Choose a customer."
    request["user"] = user
    try:
        request["item"] = ItemRef.parse(item)
    except ValidationError:
        errors["item"] = "Choose a course or a test."
    if mode == PAID:
        paid = read_amount(amount)
        if paid is None or paid <= 0:
            errors["amount"] = f"Enter the amount paid in {context.currency}, such as 29.99 or 1,299.50 (more than 0)."
        else:
            request["amount"] = float(paid)
        if method not in context.payment_methods or method == FREE_METHOD:
            errors["method"] = "Choose how it was paid."
        request["method"] = method
        if not errors.get("amount") and not errors.get("method"):
            # what the grant itself will check (the largest amount, the currency's decimals), now
            problems = payment_problems(request["amount"], method, context.settings.core)
            if problems:
                errors["amount"] = problems[0][:1].upper() + problems[0][1:] + "."
    else:
        request["amount"], request["method"] = 0, FREE_METHOD
    return request, errors


def already_owned(db, request: dict) -> str:
    """"Already owns it" when the customer's array lists the item (one point read), else ""."""
    try:
        user = get_customer(db, request["user"])
    except PurchaseError:
        return ""  # the grant itself says what is wrong with the user
    owns = request["item"] in owned_items(user)
    return f"{user.get('name') or 'This customer'} already owns this {request['item'].kind}." if owns else ""


def describe(request: dict, context: DashboardContext) -> html.Dl:
    """What the confirmation step says: every field the grant will write, the note included."""
    db = context.db
    try:
        user = get_customer(db, request["user"])
        who = f"{user.get('name') or '(no name)'} ({user.get('email') or 'no email'})"
    except PurchaseError:
        who = f"user {request['user']}"
    item: ItemRef = request["item"]
    title = next((i["title"] for i in list_items(db, item.kind) if i["_id"] == item.id), str(item.id))
    paid = ("Complimentary: free access, amount 0 (admin grant)" if request["amount"] == 0
            else f"{money_text(request['amount'], context.currency)} paid by {method_label(request['method'])}")
    rows = [("Customer", who), (item.spec.label, title), ("Payment", paid),
            ("Discount code", request["discount"] or "None"), ("Note for the audit log", request["note"] or "None")]
    return html.Dl(className="review", children=[part for label, value in rows
                                                  for part in (html.Dt(label), html.Dd(value))])


def grant(db, request: dict, actor: str, key: str, settings) -> dict:
    """The one write: core's create_purchase with this form view's idempotency key."""
    data = {"amount": request["amount"], "paymentMethod": request["method"], "actor": actor,
            "idempotencyKey": f"grant:{key}", **({"discountCode": request["discount"]} if request["discount"] else {})}
    return create_purchase(db, request["user"], *request["item"].ids(), data, settings=settings, source="admin",
                           note=request["note"])


def _granted(purchase: dict, request: dict, context: DashboardContext) -> html.Div:
    return html.Div(className="panel success", children=[
        html.H2("Granted"),
        html.P(["Purchase ", html.Code(str(purchase["_id"])), f" for {money_text(purchase['amount'], context.currency)}",
                " is on the customer's account and in the audit log."]),
        dcc.Link("Open the customer", href=f"/customers/{request['user']}", className="button"),
    ])


def _user_option(doc: dict) -> dict:
    return {"label": f"{doc.get('name') or '(no name)'} · {doc.get('email') or 'no email'}", "value": str(doc["_id"])}


def _item_option(item: dict, owned: set[ItemRef], currency: str) -> dict:
    """A catalog item as the picker lists it: kind, title, price, whether the customer owns it."""
    ref = ItemRef(item["kind"], item["_id"])
    price = "no price" if item.get("price") is None else money_text(item["price"], currency)
    label = f"{ref.spec.label} · {item['title']} · {price}" + (" · already owned" if ref in owned else "")
    return {"label": label, "value": str(ref)}
