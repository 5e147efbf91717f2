"""Whole-frame equality for tests, in the spirit of chispa's assert_df_equality: schema first, then rows,
with a diff that shows what is missing and what is extra."""

from __future__ import annotations

from collections import Counter

from pyspark.sql import DataFrame


def _hashable(value):
    """Rows, maps and arrays as nested tuples, so rows can be counted as a multiset."""
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _rows(df: DataFrame) -> list[tuple]:
    return [_hashable(tuple(r)) for r in df.collect()]


def _schema(df: DataFrame) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def assert_frame_equal(actual: DataFrame, expected: DataFrame | list[tuple], schema: str | None = None,
                       ignore_row_order: bool = True, check_schema: bool = True) -> None:
    """actual equals expected (a frame, or rows in `schema`, a DDL string): same column names and types, same rows.

    Rows are compared as multisets unless ignore_row_order is False."""
    if not isinstance(expected, DataFrame):
        if schema is None:
            raise ValueError("give the DDL schema of the expected rows")
        expected = actual.sparkSession.createDataFrame(expected, schema)
    if check_schema:
        got, want = _schema(actual), _schema(expected)
        assert got == want, f"schemas differ:\n  actual:   {got}\n  expected: {want}"
    else:
        assert actual.columns == expected.columns, f"columns differ: {actual.columns} != {expected.columns}"
    got_rows, want_rows = _rows(actual), _rows(expected)
    if ignore_row_order:
        missing = Counter(want_rows) - Counter(got_rows)
        extra = Counter(got_rows) - Counter(want_rows)
        assert not missing and not extra, (
            "rows differ:\n  missing (expected, not found): " + repr(sorted(missing.elements(), key=repr))
            + "\n  extra (found, not expected):   " + repr(sorted(extra.elements(), key=repr)))
    else:
        assert got_rows == want_rows, f"rows differ (in order):\n  actual:   {got_rows}\n  expected: {want_rows}"
