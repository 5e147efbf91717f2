"""Run accounting: per source and step, rows in = rows out + quarantined + duplicates (audit.reconciliation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cdp.io import Lakehouse
from cdp.tables import RECONCILIATION


@dataclass(frozen=True)
class Reconciliation:
    source: str
    stage: str
    target_table: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    rows_duplicate: int = 0

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_quarantined + self.rows_duplicate


def record_reconciliation(lake: Lakehouse, rows: list[Reconciliation], run_id: str, now: datetime) -> None:
    if rows:
        lake.append(lake.rows(RECONCILIATION, [
            (run_id, r.source, r.stage, r.target_table, r.rows_in, r.rows_out, r.rows_quarantined, r.rows_duplicate,
             r.balanced, now) for r in rows]), RECONCILIATION)
