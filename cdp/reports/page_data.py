"""The run report's page data, laid out by cdp/templates/run_report.html.j2: a Section of facts, plots (Plot) and
tables (Grid of Cell), or one line saying why it has nothing to show (Absent); the cell formatters and _fetch,
which every section's data function goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from cdp.io import Lakehouse
from cdp.tables import Table


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    status: str = ""          # a status class of base.html.j2 (ok, warn, bad): the text is shown as a label


@dataclass(frozen=True)
class Grid:
    columns: list[str]
    rows: list[list[Cell]]
    title: str = ""


@dataclass(frozen=True)
class Plot:
    markup: Markup            # an inline <svg> or an <img> with a data: URI, built here from escaped text only
    caption: str


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    source: str               # what the section reads
    absent: str = ""          # one line instead of the content when there is nothing to show
    facts: list[tuple[str, str]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Absent:
    """Why a section has nothing to show (its table is missing or empty)."""
    line: str


def _n(value) -> Cell:
    return Cell("" if value is None else f"{value:,}", numeric=True)


def _f(value, digits: int = 1) -> Cell:
    return Cell("" if value is None else f"{value:,.{digits}f}", numeric=True)


def _pct(value) -> Cell:
    return Cell("" if value is None else f"{value:.1%}", numeric=True)


def _status(status: str | None) -> str:
    """The status class of a run or step status (cdp.runs: succeeded, failed, interrupted, skipped, running)."""
    return {"succeeded": "ok", "failed": "bad", "interrupted": "bad"}.get(status or "", "warn")


def _time(when: datetime | None) -> str:
    return "unknown" if when is None else f"{when:%Y-%m-%d %H:%M:%S}"


def _fetch(lake: Lakehouse, table: Table, step: str, query: Callable[[], object]) -> object:
    """query()'s result, or Absent when the table is missing or the result empty."""
    if not lake.exists(table):
        return Absent(f"{table} is not in the lakehouse: run the {step} step to fill it.")
    found = query()
    return found if found else Absent(f"{table} is empty.")
