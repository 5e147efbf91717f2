"""Run accounting: per source and step, rows in = rows out + quarantined + duplicates (audit.reconciliation).

rows_flagged is not a term of that sum: it counts the rows of rows_out that went on with values set to NULL
(null_and_flag), whose values are also in quarantine.records as `bad_value:<column>`."""

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
    rows_flagged: int = 0

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_quarantined + self.rows_duplicate


def record_reconciliation(lake: Lakehouse, rows: list[Reconciliation], run_id: str, now: datetime) -> None:
    if rows:
        df = lake.rows(RECONCILIATION, [
            (run_id, r.source, r.stage, r.target_table, r.rows_in, r.rows_out, r.rows_quarantined, r.rows_duplicate,
             r.balanced, r.rows_flagged, now) for r in rows])
        if lake.exists(RECONCILIATION):
            lake.add_new_columns(df, RECONCILIATION)   # a table written before rows_flagged existed
        lake.append(df, RECONCILIATION)
