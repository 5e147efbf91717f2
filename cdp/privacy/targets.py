"""Which rows of which table belong to the person: per table, the MERGE condition joining its rows to the
subject's (kind, value) rows (cdp.privacy.subject.Subject.rows). Pure: no Spark, no I/O.

Every erasure is `MERGE INTO t USING subject s ON <condition> WHEN MATCHED THEN DELETE`. The condition names columns
and kinds only, never a value: Delta writes a DELETE's predicate into the commit log (commitInfo), a MERGE's join
condition too, so a `DELETE WHERE email = '...'` would copy the value it erases into the table's history."""

from __future__ import annotations

from dataclasses import dataclass

from cdp.config.sources import SourceSpec
from cdp.privacy.subject import UNIQUE_FIELDS
from cdp.tables import (
    ATTRIBUTION,
    CHURN_FEATURES,
    CHURN_SCORES,
    CUSTOMER_JOURNEY,
    CUSTOMER_PROFILE,
    CUSTOMER_PROFILE_HISTORY,
    CUSTOMER_VALUE,
    CUSTOMERS,
    IDENTITY_CAPPED_VALUES,
    IDENTITY_CHANGES,
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_MATCH_SCORES,
    IDENTITY_RECORDS,
    IDENTITY_REVIEW,
    IDENTITY_TERM_FREQUENCIES,
    INCOMPLETE_PURCHASES,
    INTERACTIONS,
    NEXT_BEST_ACTION,
    ORDER_LINES,
    ORDERS,
    PROTECTED_TABLES,
    QUARANTINE,
    SEGMENTS,
    Table,
    bronze,
)


def equals(column: str, kind: str) -> str:
    return f"(s.kind = '{kind}' AND t.`{column}` = s.value)"


def equals_lower(column: str, kind: str) -> str:
    return f"(s.kind = '{kind}' AND lower(trim(CAST(t.`{column}` AS STRING))) = s.value)"


def contains(column: str, kind: str) -> str:
    """The value appears anywhere in the text (case-insensitive): a quarantined row's raw line."""
    return f"(s.kind = '{kind}' AND instr(lower(t.`{column}`), s.value) > 0)"


def has_element(column: str, kind: str) -> str:
    return f"(s.kind = '{kind}' AND array_contains(t.`{column}`, s.value))"


def source_key(source: str, key_column: str = "record_key") -> str:
    return f"(s.kind = 'key:{source}' AND t.`source` = '{source}' AND t.`{key_column}` = s.value)"


@dataclass(frozen=True)
class Target:
    """A table and the alternatives (ORed) by which one of its rows belongs to the person."""

    table: Table
    matches: tuple[str, ...]

    @property
    def condition(self) -> str:
        return " OR ".join(self.matches)


# tables keyed by customer: every row of the person's customer ids goes
_BY_CUSTOMER = (CUSTOMERS, CUSTOMER_PROFILE, CUSTOMER_PROFILE_HISTORY, SEGMENTS, INCOMPLETE_PURCHASES,
                CHURN_FEATURES, CHURN_SCORES, CUSTOMER_VALUE, NEXT_BEST_ACTION, *PROTECTED_TABLES)


def bronze_target(spec: SourceSpec) -> Target:
    """A source's bronze rows: by record key, and by any unique identifier column holding one of the person's values
    (a row that never reached silver: quarantined there, or not resolved yet)."""
    matches = [equals(spec.record_key, f"key:{spec.name}")]
    identity = spec.silver.identity
    if identity is not None:
        columns = {identity.fields[f] for f in UNIQUE_FIELDS if f in identity.fields}
        if identity.handle_by_platform:
            columns.add(identity.handle_by_platform.handle)
        columns |= {identity.fields[n] for n in spec.custom_attributes if n in identity.fields}
        matches += [equals_lower(c, "value") for c in sorted(columns - {spec.record_key})]
    if spec.silver.detail == "order_lines":
        matches.append(equals("order_id", "order"))
    return Target(bronze(spec.name), tuple(matches))


def erasure_targets(specs: list[SourceSpec]) -> list[Target]:
    """Every table that can hold the person's rows, bronze to gold and the quarantine, with its condition.
    Aggregates (KPIs, funnels, paths, segment and cluster sizes) hold counts of many people, not a person's rows;
    audit tables hold run and file figures (tests/test_erasure.py scans them all to prove it)."""
    targets = [bronze_target(s) for s in specs]
    targets += [
        Target(IDENTITY_RECORDS, (equals("record_id", "record"),)),
        Target(INTERACTIONS, (equals("identity_record_id", "record"), equals("interaction_id", "interaction"))),
        Target(ORDERS, (equals("order_id", "order"),)),
        Target(ORDER_LINES, (equals("order_id", "order"),)),
        Target(IDENTITY_MAP, (equals("record_id", "record"), equals("customer_id", "customer"))),
        Target(IDENTITY_LINKS, (equals("src", "record"), equals("dst", "record"), equals("customer_id", "customer"))),
        Target(IDENTITY_MATCH_SCORES, (equals("src", "record"), equals("dst", "record"))),
        Target(IDENTITY_CHANGES, (equals("customer_id_after", "customer"), has_element("customer_ids_before", "customer"))),
        Target(IDENTITY_REVIEW, (equals("cluster_root", "record"),)),
        Target(IDENTITY_CAPPED_VALUES, (equals("component", "record"), equals_lower("value", "value"))),
        Target(IDENTITY_JUNK_VALUES, (equals_lower("value", "value"),)),
        Target(IDENTITY_TERM_FREQUENCIES, (equals_lower("value", "value"),)),
        Target(CUSTOMER_JOURNEY, (equals("customer_id", "customer"), equals("interaction_id", "interaction"))),
        Target(ATTRIBUTION, (equals("customer_id", "customer"), equals("interaction_id", "interaction"))),
        *[Target(t, (equals("customer_id", "customer"),)) for t in _BY_CUSTOMER],
        Target(QUARANTINE, (*[source_key(s.name) for s in specs], contains("raw", "text"))),
    ]
    return targets
