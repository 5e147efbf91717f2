"""Spark SQL over the lakehouse by `layer.table` names (`cdp sql "SELECT ... FROM gold.customers"`).

Each registered name (and bronze.<source>) outside a quoted string or identifier is replaced by the Delta path
reader `delta.`<location>``: no metastore is needed, and the same query runs against object storage.
"""

from __future__ import annotations

import re

from cdp.io import Lakehouse
from cdp.tables import LAYERS, table

_QUOTED = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)"""
_NAME = r"(?<![\w.])(" + "|".join(LAYERS) + r")\.([A-Za-z_][A-Za-z0-9_]*)(?![\w`])"
_TOKENS = re.compile(_QUOTED + "|" + _NAME)


def qualify_tables(query: str, lake: Lakehouse) -> str:
    """The query with every `layer.table` a registered table (or bronze.<source>) read from its Delta location;
    quoted strings and identifiers are left alone. ValueError on a layer.table that is not registered."""
    def swap(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        name = f"{m.group(2)}.{m.group(3)}"
        return f"delta.`{lake.location(table(name))}`"
    return _TOKENS.sub(swap, query)
