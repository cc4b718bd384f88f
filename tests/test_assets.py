"""The page's vendored Plotly bundle matches the plotly.js that dcc.Graph was built with."""

import re
from importlib.resources import files
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent.parent / "assets" / "vendor" / "plotly-basic.min.js"


def version_of(header: str) -> str:
    return re.search(r"plotly\.js (?:\(basic - minified\) )?v(\d+\.\d+\.\d+)", header).group(1)


def test_partial_bundle_is_the_same_plotly_js_version():
    full = files("plotly") / "package_data" / "plotly.min.js"
    assert version_of(BUNDLE.read_text()[:300]) == version_of(full.read_text()[:300])


def test_pages_do_not_load_plotly_and_a_chart_gets_the_basic_bundle(app, viewer_client):
    # every page's scripts: the bundle is not among them (a page without a chart never loads it)
    dash_app = app.extensions["dash"]
    scripts = dash_app._collect_and_register_resources(dash_app.scripts.get_all_scripts())
    assert scripts and not [url for url in scripts if "plotly" in url.lower()]
    # the address dcc.Graph fetches plotly.js from answers with the basic bundle, kept an hour
    answer = viewer_client.get("/_dash-component-suites/plotly/package_data/plotly.min.js")
    assert answer.status_code == 200 and answer.data == BUNDLE.read_bytes()
    assert answer.mimetype == "text/javascript" and "max-age=3600" in answer.headers["Cache-Control"]
