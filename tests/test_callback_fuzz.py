"""Every callback of every page, sent values of shapes no browser sends: a 400 or an answer,
never a server error (a review's fuzzing found 49 of 252 such calls answered 500)."""

import pytest

from dashboard.callback_requests import callback_problem, fits

WRONG = ({"a": 1}, ["x", {"b": 2}], 12345, True, "x" * 3000, [[1]], {"$gt": ""})


def outputs_of(key: str):
    """The `outputs` a browser sends for a callback map key."""
    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = [dict(zip(("id", "property"), part.split("@")[0].rsplit(".", 1), strict=True)) for part in parts]
    return outputs if key.startswith("..") else outputs[0]


def server_callbacks(app):
    """(key, inputs, state) of each server callback whose ids are plain strings."""
    for key, callback in app.extensions["dash"].callback_map.items():
        items = callback["inputs"] + callback["state"]
        if callable(callback.get("callback")) and all(isinstance(i["id"], str) for i in items):
            yield key, [dict(i) for i in callback["inputs"]], [dict(s) for s in callback["state"]]


def test_no_callback_answers_a_server_error_to_values_of_the_wrong_shape(app, admin_client):
    failures, calls = [], 0
    for key, inputs, state in server_callbacks(app):
        base = {"output": key, "outputs": outputs_of(key), "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs[:1]],
                "inputs": [{**i, "value": None} for i in inputs], "state": [{**s, "value": None} for s in state]}
        for part in ("inputs", "state"):
            for n in range(len(base[part])):
                for wrong in WRONG:
                    body = {**base, part: [dict(item) for item in base[part]]}
                    body[part][n]["value"] = wrong
                    calls += 1
                    status = admin_client.post("/_dash-update-component", json=body).status_code
                    if status >= 500:
                        failures.append((key[:50], body[part][n]["id"], body[part][n]["property"], repr(wrong)[:20]))
    assert calls > 300 and failures == []


@pytest.mark.parametrize(("prop", "value", "ok"), [
    ("n_clicks", 3, True), ("n_clicks", -1, False), ("n_clicks", True, False), ("n_clicks", "3", False),
    ("search", "?a=1", True), ("search", {"a": 1}, False), ("value", "x", True), ("value", ["a", 2], True),
    ("value", {"a": 1}, False), ("value", [["a"]], False), ("value", float("nan"), False), ("data", {"any": 1}, True),
    ("start_date", 20240101, False), ("value", None, True),
])
def test_what_a_property_may_hold(prop, value, ok):
    assert fits(prop, value) is ok


def test_a_request_must_name_a_server_callback(app):
    callback_map = app.extensions["dash"].callback_map
    assert callback_problem([], callback_map) == "a callback request is a JSON object"
    assert callback_problem({"output": "shell-title.children"}, callback_map) == "no such callback"  # clientside
    assert callback_problem({"output": "nothing.children"}, callback_map) == "no such callback"
    assert callback_problem({"output": "customers-results.children", "inputs": {"x": 1}}, callback_map)
