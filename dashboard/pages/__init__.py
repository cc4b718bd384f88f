"""The pages: one module each, found here by name, in the order of `ORDER` then the rest.

A page module defines PATH, TITLE, NAV (the navigation label, or None to stay out of it),
`layout(**query)` (called per request) and `register(app, context)` (its callbacks).
Adding a page is adding a module.
"""

import importlib
import pkgutil

ORDER = ("live",)


def page_modules() -> list:
    """Every page module of this package, `ORDER` first."""
    names = [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    names.sort(key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
