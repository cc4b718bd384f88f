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
