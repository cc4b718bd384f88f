"""The pages: one module each, found here by name, in the order of `ORDER` then the rest.

A page module defines PATH, TITLE, NAV (the navigation label, or None to stay out of it),
ROLE ("viewer": every signed-in account; "admin": admins only), `layout(path)` (called per
request, with the URL's path: a page whose PATH is a prefix also serves the paths below it)
and `register(app, context)` (its callbacks). Adding a page is adding a module.
"""

import importlib
import pkgutil

ORDER = ("live", "insights", "customers", "grant", "bulk", "audit", "reports", "api_keys", "staff", "health")


def page_modules() -> list:
    """Every page module of this package, `ORDER` first."""
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    names.sort(key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def page_for(pages: list, path: str):
    """The page that serves `path`: the one whose PATH equals it, or is its longest prefix."""
    path = (path or "/").rstrip("/") or "/"
    best = None
    for page in pages:
        serves = path == page.PATH or (page.PATH != "/" and path.startswith(page.PATH + "/"))
        if serves and (best is None or len(page.PATH) > len(best.PATH)):
            best = page
    return best
