"""The confirm step of a form that writes: Review checks the form and shows what will be written
in a confirm box, the form locked; Confirm writes; Back unlocks the form. The grant form and the
revoke panel share it (their callbacks name the same outputs); the API keys and staff pages draw
their confirm boxes with it.

A callback's reply is a dict by output name (`outputs`): one entry per field's error line, then
"form", "confirmBox", "confirmText" and "result".
"""

from collections.abc import Callable
from dataclasses import dataclass

from dash import Input, Output, html


@dataclass(frozen=True)
class ConfirmStep:
    """One form's confirm step: the ids of its parts and their css classes."""

    box: str  # the confirm box
    text: str  # what the box says will be written
    confirm: str  # its Confirm button
    back: str  # its Back button
    box_class: str  # the box's classes when shown ("panel confirm"); hidden adds "hidden"
    form: str | None = None  # the form the box locks while shown
    form_class: str = ""  # the form's classes when open for edits; locked adds "locked"
    result: str | None = None  # where the outcome of the write is said
    fields: tuple[str, ...] = ()  # the form's fields, each with an error line
    error_id: Callable[[str], str] | None = None  # a field's error line's id

    def box_layout(self, heading: str, confirm_label: str, *, danger: bool = False, nested: bool = False):
        """The confirm box, hidden: a heading, what will be written, Confirm and Back. `nested`:
        inside a panel (a div, an h3, a paragraph), not a panel of its own (a section, an h2, a div)."""
        box, title, said = (html.Div, html.H3, html.P) if nested else (html.Section, html.H2, html.Div)
        return box(id=self.box, className=f"{self.box_class} hidden", children=[
            title(heading),
            said(id=self.text),
            html.Div(className="actions", children=[
                html.Button(confirm_label, id=self.confirm, n_clicks=0,
                            className="button primary danger" if danger else "button primary"),
                html.Button("Back", id=self.back, className="button", n_clicks=0),
            ]),
        ])

    def outputs(self) -> dict:
        """The outputs a callback of this step writes, by name."""
        return {**{field: Output(self.error_id(field), "children") for field in self.fields},
                "form": Output(self.form, "className"), "confirmBox": Output(self.box, "className"),
                "confirmText": Output(self.text, "children"), "result": Output(self.result, "children")}

    def errors(self, errors: dict) -> dict:
        """Every field's error line: `errors`' text for the fields it names, empty for the others."""
        return {field: errors.get(field, "") for field in self.fields}

    def editing(self) -> dict:
        """The form open for edits, the box hidden (Back)."""
        return {"form": self.form_class, "confirmBox": f"{self.box_class} hidden"}

    def reviewing(self, text) -> dict:
        """The box saying what will be written, the form locked, no errors (Review of a good form)."""
        return {**self.errors({}), "form": f"{self.form_class} locked", "confirmBox": self.box_class,
                "confirmText": text, "result": ""}

    def refused(self, errors: dict) -> dict:
        """The form's problems beside their fields, the form open again."""
        return {**self.errors(errors), **self.editing(), "result": ""}

    def failed(self, field: str | None, text: str) -> dict:
        """What the write met: beside the field it is about, or as the outcome; the form open again."""
        return {**self.errors({field: text} if field else {}), **self.editing(),
                "result": "" if field else html.P(text, className="message")}


def scroll_when_shown(app, shown_id: str, scroll_id: str) -> None:
    """Bring `shown_id` (a confirm box, a panel that opens below the fold) into view whenever
    its classes stop saying "hidden"; `scroll_id` is a hidden element the callback names."""
    app.clientside_callback(
        "function(css) { const box = document.getElementById('" + shown_id + "');"
        " if (css && !css.includes('hidden') && box) { box.scrollIntoView({block: 'nearest'}); }"
        " return window.dash_clientside.no_update; }",
        Output(scroll_id, "children"),
        Input(shown_id, "className"),
        prevent_initial_call=True,
    )
