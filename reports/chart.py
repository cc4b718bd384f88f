"""The revenue chart of a report as a PNG: the live page's figure (dashboard.figures.revenue_figure)
drawn by plotly's static export, kaleido, in Debian's Chromium.

kaleido starts a headless Chromium for each image (a few seconds; reports are few) with the
plotly.js "basic" bundle the dashboard serves (a quarter of the full bundle's size, so the page
loads faster) and no MathJax (kaleido would fetch it from a CDN, and there is no network). One
image at a time per process: each holds a browser.
"""

import logging
import shutil
import threading
from pathlib import Path

import kaleido

from dashboard.figures import revenue_figure

WIDTH, HEIGHT = 760, 320
PLOTLY_JS = Path(__file__).resolve().parent.parent / "assets" / "vendor" / "plotly-basic.min.js"
TIMEOUT = 60  # seconds kaleido may take for the image once its browser runs
_one_at_a_time = threading.Lock()
log = logging.getLogger(__name__)


def chromium() -> str | None:
    """Debian's Chromium; None lets choreographer search (it honours BROWSER_PATH)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def revenue_png(rows: list[dict], granularity: str, currency: str) -> bytes:
    """The revenue chart of `rows` (revenueByPeriod, times as they should be written) as PNG bytes."""
    figure = revenue_figure(rows, granularity, currency)
    figure["layout"] = {**figure["layout"], "width": WIDTH, "height": HEIGHT,
                        "margin": {"l": 8, "r": 16, "t": 12, "b": 8}}
    options = {"path": chromium(), "mathjax": False, "plotlyjs": str(PLOTLY_JS), "timeout": TIMEOUT}
    with _one_at_a_time:
        return kaleido.calc_fig_sync(figure, opts={"format": "png", "width": WIDTH, "height": HEIGHT, "scale": 1},
                                     kopts=options)
