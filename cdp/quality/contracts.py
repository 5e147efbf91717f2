"""The per-row verdict of a table contract (cdp.config.contracts) as Spark Columns: `row_failure_reason` turns the
row-level expectations into one Column, so the rows Great Expectations counts as unexpected are exactly the rows
we quarantine."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp.config.contracts import ExpectationSpec, TableContract
from cdp.frames import first_failing


def failure_condition(spec: ExpectationSpec) -> Column:
    """True when a row fails a column expectation; NULL counts as passing (as in Great Expectations)."""
    col = F.col(spec.column)
    if spec.type == "not_null":
        return col.isNull()
    if spec.type == "between":
        checks = []
        if spec.min is not None:
            checks.append(col < F.lit(spec.min))
        if spec.max is not None:
            checks.append(col > F.lit(spec.max))
        return checks[0] if len(checks) == 1 else checks[0] | checks[1]
    if spec.type == "in_set":
        return ~col.isin(list(spec.values or []))
    if spec.type == "regex":
        return ~col.rlike(spec.pattern)
    raise ValueError(f"{spec.name}: a {spec.type} expectation has no per-row condition")


def row_failure_reason(contract: TableContract) -> Column:
    """Name of the first failing row-level expectation of each row, or NULL when the row passes."""
    return first_failing([(failure_condition(e), e.name) for e in contract.row_expectations])
