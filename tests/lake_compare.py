"""Comparing the tables of two lakehouses that ran the same data under the same run id (tests/test_cluster.py:
a cluster run against a local one; tests/test_crash.py: a run killed and re-run against an uninterrupted one).

Columns that legitimately differ are left out, with the reason; floating-point values are compared with a
tolerance, every other value exactly."""

from __future__ import annotations

import json
import math

from frame_asserts import assert_frame_equal

from cdp.io import Lakehouse
from cdp.tables import REGISTERED

GOLD = [t for t in REGISTERED if t.layer == "gold"]
# Columns that legitimately differ between two runs of the same data with the same run id, left out, with the reason.
RUN_START = "the run's wall-clock start time (RunContext.started_at), stamped on the rows the run wrote"
EXCLUDED: dict[str, str] = {
    "gold.identity_map.resolved_at": RUN_START,
    "gold.identity_changes.changed_at": RUN_START,
    "gold.customers.updated_at": RUN_START,
    "gold.customers_protected.updated_at": RUN_START + " (copied from gold.customers)",
    "gold.identity_model.trained_at": RUN_START,
    "gold.segments.assigned_at": RUN_START,
}
# Floating-point values (double/float anywhere in a column: maps and arrays too) are compared with a tolerance,
# every other value exactly. A sum of doubles depends on the order of its terms, and that order follows the
# partitioning: which rows a task holds, and on a cluster the order in which shuffle blocks arrive (so it changes
# from one cluster run to the next). With 2 executors and 2 shuffle partitions against the local run's 1, these
# differed in their last digits (with 1 shuffle partition on the cluster, every gold table was bit-for-bit equal
# but for EXCLUDED and linker_uid):
FLOAT_SUMS_SEEN = {
    "gold.identity_match_scores.match_weight": "Splink's EM estimates (sums over record pairs in Spark SQL)",
    "gold.identity_model.model_json": "the same m and u probabilities, in the saved model (JSON text)",
    "gold.customer_profile.sentiment_score": "avg over the customer's texts (also in customer_profile_history and \n                                         the protected copies)",
    "gold.churn_scores.churn_probability": "GBT and logistic regression train with treeAggregate over partitions",
    "gold.next_best_action.churn_probability": "from churn_scores",
}
REL_TOL, ABS_TOL = 1e-9, 1e-9   # seen: relative differences of 1e-16 to 1.4e-9 (a churn probability of 0.0017)
# Columns compared with a looser tolerance than REL_TOL (column -> (tolerance, reason)). None now: the customer value
# models were fitted on grid cells in partitioning order (1e-8 to 1e-7 apart) until summary_grid sorted them.
LOOSE: dict[str, tuple[float, str]] = {}
# Text columns holding JSON: compared parsed, floats with the tolerance, without the keys named here (with the reason).
JSON_COLUMNS = {"gold.identity_model.model_json"}
JSON_KEYS_IGNORED = {
    "linker_uid": "Splink's save_model_to_json includes the random id each Linker draws for its cache tables' names",
}


def _column(qualified: str) -> tuple[str, str]:
    table, _, column = qualified.rpartition(".")
    return table, column


def _has_float(data_type) -> bool:
    return "double" in data_type.simpleString() or "float" in data_type.simpleString()


def _close(a, b, rel_tol: float = REL_TOL) -> bool:
    """a equals b, floats within the tolerance (nested rows, maps and lists too)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=ABS_TOL) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, rel_tol) for x, y in zip(a, b, strict=True))
    return a == b


def _json(text: str | None):
    value = None if text is None else json.loads(text)
    return {k: v for k, v in value.items() if k not in JSON_KEYS_IGNORED} if isinstance(value, dict) else value


def assert_table_equal(local: Lakehouse, remote: Lakehouse, table, excluded: dict[str, str] = EXCLUDED) -> None:
    """The table of both lakehouses without its `excluded` columns: the columns with no floating-point value as
    whole frames (assert_frame_equal), then, row by row on the table's key, the others with the tolerance."""
    actual, expected = (lake.read(table).drop(*(c for t, c in map(_column, excluded) if t == table.qualified))
                        for lake in (remote, local))
    fuzzy = [f.name for f in expected.schema.fields
             if _has_float(f.dataType) or f"{table.qualified}.{f.name}" in JSON_COLUMNS]
    assert_frame_equal(actual.drop(*fuzzy), expected.drop(*fuzzy))
    if not fuzzy:
        return
    key = list(table.key)
    assert key and not set(key) & set(fuzzy), f"{table}: no key to pair the rows by"
    rows = []
    for df in (actual, expected):
        collected = df.select(*key, *fuzzy).collect()
        pairs = {tuple(r[k] for k in key): r for r in collected}
        assert len(pairs) == len(collected), f"{table}: its key {key} is not unique"
        rows.append(pairs)
    differ = []
    for k, want in rows[1].items():
        got = rows[0][k]     # the same keys: the exact comparison above holds them
        for name in fuzzy:
            a, b, column = got[name], want[name], f"{table.qualified}.{name}"
            if column in JSON_COLUMNS:
                a, b = _json(a), _json(b)
            if not _close(a, b, LOOSE.get(column, (REL_TOL,))[0]):
                differ.append(f"{dict(zip(key, k, strict=True))} {name}: {a!r:.300} != expected {b!r:.300}")
    assert not differ, f"{len(differ)} value(s) differ beyond the tolerance:\n" + "\n".join(differ[:20])


def compare(local: Lakehouse, remote: Lakehouse, tables=None, excluded: dict[str, str] = EXCLUDED) -> dict[str, str]:
    """Every gold table (or `tables`) of both lakehouses (assert_table_equal): {table: what differs}."""
    differ = {}
    for table in GOLD if tables is None else tables:
        try:
            assert_table_equal(local, remote, table, excluded)
        except AssertionError as exc:
            differ[table.qualified] = str(exc)[:4000]
    return differ


