"""A Dash callback posted over HTTP the way the browser posts it, for tests and benchmarks."""


def callback_key(dash_app, *outputs: str) -> str:
    """The callback whose outputs include every "id.property" given."""
    matches = [key for key in dash_app.callback_map if all(_has_output(key, output) for output in outputs)]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} callbacks write {outputs}")
    return matches[0]


def callback_body(dash_app, key: str, values: dict, changed: list[str]) -> dict:
    """The JSON body of `/_dash-update-component`: `values` by "id.property", `changed` triggered."""
    spec = dash_app.callback_map[key]

    def props(entries):
        return [{**entry, "value": values.get(f"{entry['id']}.{entry['property']}")} for entry in entries]

    outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True)) for o in _outputs(key)]
    return {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": props(spec["inputs"]), "state": props(spec["state"]), "changedPropIds": changed}


def _outputs(key: str) -> list[str]:
    return key.strip(".").split("...") if key.startswith("..") else [key]


def _has_output(key: str, output: str) -> bool:
    return any(o.split("@", 1)[0] == output for o in _outputs(key))
