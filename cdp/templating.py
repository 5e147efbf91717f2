"""Jinja2 rendering of report pages from the templates shipped in cdp/templates/.

One Environment per process: PackageLoader("cdp", "templates"), autoescape for *.html(.j2) / *.xml / *.svg,
StrictUndefined (a missing value is an error, not an empty cell) and the number filters reports share.
Pages compute their data in Python first and hand it to `render`; templates only lay it out.
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Number

from jinja2 import Environment, PackageLoader, StrictUndefined

_ESCAPED = (".html", ".htm", ".xml", ".svg")


def _autoescape(name: str | None) -> bool:
    """HTML-like templates are escaped whether or not they end in .j2; strings (name None) are too."""
    if name is None:
        return True
    return name.lower().removesuffix(".j2").endswith(_ESCAPED)


def thousands(value: Number | None) -> str:
    """1234567 -> '1,234,567'; None -> '' (an empty cell)."""
    return "" if value is None else f"{value:,}"


def decimal(value: Number | None, digits: int = 2) -> str:
    """1234.5 -> '1,234.50'; None -> ''."""
    return "" if value is None else f"{value:,.{digits}f}"


def percent(fraction: Number | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.1234 -> '12.3%'; None -> ''."""
    return "" if fraction is None else f"{fraction:.{digits}%}"


FILTERS = {"thousands": thousands, "decimal": decimal, "percent": percent}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Environment (created on first use)."""
    env = Environment(
        loader=PackageLoader("cdp", "templates"),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def render(template: str, **context) -> str:
    """Render cdp/templates/<template> with context; customer text is escaped in HTML templates."""
    return environment().get_template(template).render(**context)
