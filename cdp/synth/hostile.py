"""Hostile records for every source (issue #17): seeded, driven by the source definitions (conf/sources), each
record tagged with its kind and the outcome the pipeline owes it, written in the source's own format.

    cases = write_hostile(specs, landing, per_kind=40, seed=7)   # files under landing + landing/_manifest.jsonl
    KINDS["null_byte"].outcome                                   # 'flagged'

Outcomes: `flows` (stored verbatim, in the source's main silver table, nothing quarantined), `flagged` (the row
goes on, the value NULL, a `bad_value:<col>` quarantine row), `quarantined` (stopped at `stage` with `reason`),
`rejected` (the whole file, in audit.file_rejections), `empty` (the file lands as zero rows). The case table,
kind by kind with the reasons, is docs/reliability.md "Hostile input"; KINDS says the same in code.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone

from cdp.config.sources import SourceSpec

MANIFEST = "_manifest.jsonl"   # the landing readers skip names starting with '_'


@dataclass(frozen=True)
class Kind:
    name: str
    target: str          # the role of the value it spoils: text, key, time, amount, number, row, file
    outcome: str         # flows | flagged | quarantined | rejected | empty; per source and column: `expected`
    formats: tuple[str, ...] = ("csv", "json", "parquet")
    weight: int = 1      # records per unit of per_kind (0: one record, or one file of a file kind, per source)


KINDS = {k.name: k for k in (
    Kind("emoji", "text", "flows", weight=2),
    Kind("rtl_text", "text", "flows", weight=2),
    Kind("sql_text", "text", "flows", weight=2),
    Kind("html_text", "text", "flows", weight=2),
    Kind("sql_key", "key", "flows"),
    Kind("duplicate_record", "row", "flows"),
    Kind("null_byte", "text", "flagged", weight=2),
    Kind("null_byte_key", "key", "quarantined"),
    Kind("invalid_utf8", "text", "flagged", weight=2),
    Kind("huge_string_1mb", "text", "quarantined", weight=0),
    Kind("nested_json", "text", "quarantined", ("json", "parquet")),
    Kind("nested_json_number", "number", "quarantined", ("json",)),
    Kind("year_9999", "time", "quarantined"),
    Kind("year_1", "time", "quarantined"),
    Kind("impossible_date", "time", "quarantined"),
    Kind("negative_amount", "amount", "quarantined"),
    Kind("nan_amount", "number", "flagged"),
    Kind("huge_amount", "number", "flows"),
    Kind("overflow_amount", "number", "flagged"),
    Kind("missing_key", "row", "quarantined", ("csv", "json")),
    Kind("malformed_row", "row", "quarantined", ("csv", "json")),
    Kind("json_not_object", "row", "quarantined", ("json",)),
    Kind("duplicate_field", "row", "quarantined", ("json",)),
    Kind("bom_crlf", "file", "flows", ("csv", "json")),
    Kind("empty_file", "file", "empty", weight=0),
    Kind("header_only", "file", "empty", ("csv",), weight=0),
    Kind("missing_header", "file", "rejected", ("csv", "parquet"), weight=0),
    Kind("duplicated_header", "file", "rejected", ("csv",), weight=0),
    Kind("truncated_file", "file", "quarantined", weight=0),
)}
# Kinds the demo generator mixes in (synth.hostile_share), where they stop the whole row (stops_row): the records
# that flow on into identity resolution and journeys are exactly the generated ones.
DEMO_KINDS = ("null_byte_key", "huge_string_1mb", "nested_json", "nested_json_number", "impossible_date",
              "missing_key", "malformed_row", "json_not_object", "duplicate_field")

TEXT_VALUES = {
    "emoji": "Zoë 👩🏽‍💻🎉 ❤️‍🔥 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "rtl_text": "مرحبا بالعالم \u202eשלום\u202c עולם",
    "sql_text": "Robert'); DROP TABLE students;-- \" OR 1=1 /*",
    "html_text": "<script>alert('x')</script><img src=x onerror=alert(1)>&amp;",
    "null_byte": "before\x00after",
}
NAME_HINTS = ("text", "notes", "comment", "name", "title", "url")
CHECKED = ("currency", "status", "payment_status", "country", "gender", "platform", "email", "phone")


@dataclass(frozen=True)
class Case:
    """One manifest line: where a hostile record was written and what must become of it."""

    kind: str
    source: str
    file: str            # file name under the source's landing folder
    record_key: str | None   # None: the record's key cannot be read back (it is the damage)
    outcome: str
    stage: str | None = None
    reason: str | None = None


# ---------------------------------------------------------------- roles of a source's columns

def _strings_mapped(spec: SourceSpec, *fields: str) -> set[str]:
    m, out = spec.silver, set()
    if m.identity:
        out |= {c for f, c in m.identity.fields.items() if f in fields}
        if m.identity.handle_by_platform:
            out.add(m.identity.handle_by_platform.platform)
    if m.interaction:
        out |= {c for f, c in m.interaction.fields.items() if f in fields}
        if m.interaction.event_type.column:
            out.add(m.interaction.event_type.column)
    return out


def text_column(spec: SourceSpec) -> str:
    """An optional string column nothing downstream checks, where hostile text must flow."""
    skip = _strings_mapped(spec, *CHECKED) | {spec.record_key}
    cands = [c.name for c in spec.columns if c.type == "string" and not c.required and c.name not in skip
             and not any(h in c.name for h in CHECKED)]
    text = spec.silver.interaction.fields.get("text") if spec.silver.interaction else None
    return text if text in cands else next((c for c in cands if any(h in c for h in NAME_HINTS)), cands[0])


def time_column(spec: SourceSpec) -> str | None:
    return spec.silver.interaction.event_time if spec.silver.interaction else None


def amount_column(spec: SourceSpec) -> tuple[str, str] | None:
    """(column, the row expectation a negative value fails) for a money column a contract keeps non-negative."""
    if spec.silver.interaction and "amount" in spec.silver.interaction.fields:
        return spec.silver.interaction.fields["amount"], "dq:interactions:amount_not_negative"
    if spec.silver.detail == "order_lines":
        return "unit_price", "dq:order_lines:unit_price_not_negative"
    return None


def number_column(spec: SourceSpec) -> str | None:
    amount = amount_column(spec)
    nums = [c.name for c in spec.columns if c.type in ("int", "long", "double") and not c.required]
    return amount[0] if amount else next(iter(nums), None)


def applies(kind: Kind, spec: SourceSpec) -> bool:
    if spec.format not in kind.formats:
        return False
    return {"time": time_column(spec), "amount": amount_column(spec),
            "number": number_column(spec)}.get(kind.target, True) is not None


def stops_row(kind: Kind, spec: SourceSpec) -> bool:
    """The record goes to no silver table at all: stopped in bronze, or by a type defect of its row."""
    outcome, stage, reason = expected(kind, spec)
    return outcome == "quarantined" and (stage == "bronze" or reason.startswith(("bad_", "implausible_time")))


def expected(kind: Kind, spec: SourceSpec) -> tuple[str, str | None, str | None]:
    """(outcome, stage, reason) the pipeline owes a record of this kind in this source."""
    col = {"text": text_column(spec), "key": spec.record_key, "time": time_column(spec),
           "number": number_column(spec)}.get(kind.target)
    name = kind.name
    if name in ("null_byte", "invalid_utf8"):
        return "flagged", "silver", f"bad_value:{col}"
    if name == "null_byte_key":
        return "quarantined", "silver", f"bad_text:{col}"
    if name == "huge_string_1mb":
        return "quarantined", "bronze", f"oversized_value:{col}"
    if name.startswith("nested_json"):
        return "quarantined", "bronze", f"nested_value:{col}"
    if name in ("year_9999", "year_1"):   # outside the source's plausible window, like a value that does not parse
        action = next(c for c in spec.columns if c.name == col).bad_value_action(spec.record_key)
        if action == "null_and_flag":   # the interaction has no time: its row stops
            return "quarantined", "silver", "dq:interactions:event_ts_not_null"
        return "quarantined", "silver", f"implausible_time:{col}"
    if name == "negative_amount":
        return "quarantined", "silver", amount_column(spec)[1]
    if name in ("impossible_date", "nan_amount", "overflow_amount") or (
            name == "huge_amount" and spec.column_type(col) != "double"):
        action = next(c for c in spec.columns if c.name == col).bad_value_action(spec.record_key)
        if action == "null_and_flag" and kind.target == "time":   # the interaction has no time: its row stops
            return "quarantined", "silver", "dq:interactions:event_ts_not_null"
        if action == "null_and_flag":
            return "flagged", "silver", f"bad_value:{col}"
        return "quarantined", "silver", f"{'bad_timestamp' if kind.target == 'time' else 'bad_type'}:{col}"
    if name == "missing_key":
        return "quarantined", "bronze", f"missing_required:{spec.record_key}"
    if name in ("malformed_row", "json_not_object", "truncated_file"):
        return "quarantined", "bronze", "malformed_record"
    if name == "duplicate_field":
        return "quarantined", "bronze", "duplicate_field"
    if name == "missing_header":
        return "rejected", None, "lacks required column"
    if name == "duplicated_header":
        return "rejected", None, "repeats column"
    return kind.outcome, None, None


# ---------------------------------------------------------------- values

def _format_time(spec: SourceSpec, d: datetime, date_only: bool = False) -> str:
    ymd = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if date_only:
        return ymd
    if spec.timestamp_format == "iso":
        return f"{ymd}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"
    out = spec.timestamp_format
    for token, value in (("yyyy", f"{d.year:04d}"), ("MM", f"{d.month:02d}"), ("dd", f"{d.day:02d}"),
                         ("HH", f"{d.hour:02d}"), ("mm", f"{d.minute:02d}"), ("ss", f"{d.second:02d}")):
        out = out.replace(token, value)
    return out


def base_row(spec: SourceSpec, key: str, rng: random.Random) -> dict[str, object]:
    """A valid record: the key, every required and typed column, the values contracts check; other strings null."""
    emails, phones = _strings_mapped(spec, "email"), _strings_mapped(spec, "phone")
    when = datetime(2025, 1 + rng.randrange(12), 1 + rng.randrange(28), rng.randrange(24), rng.randrange(60),
                    tzinfo=timezone.utc)
    event_type = spec.silver.interaction.event_type if spec.silver.interaction else None
    row: dict[str, object] = {}
    for c in spec.columns:
        n = c.name
        if n == spec.record_key:
            v = key
        elif c.type in ("timestamp", "date"):
            v = when if spec.format == "parquet" and c.type == "timestamp" else _format_time(spec, when, c.type == "date")
        elif c.type in ("int", "long"):
            v = 1 + rng.randrange(3)
        elif c.type == "double":
            v = round(rng.uniform(1, 200), 2)
        elif c.type == "boolean":
            v = "true"
        elif event_type and n == event_type.column:
            v = next(iter(event_type.map), "other")
        elif n in emails and c.required:   # no other identifiers: a hostile record never joins a real person
            v = f"hx.{key.lower()}@example.com"
        elif n in phones and c.required:
            v = f"+346{rng.randrange(10**7, 10**8)}"
        elif n in ("currency", "status", "payment_status", "product_id") or c.required:
            v = {"currency": "EUR", "status": "completed", "payment_status": "captured"}.get(n, f"hx-{n}")
        else:
            v = None
        row[n] = v
    return row


def spoil(kind: Kind, spec: SourceSpec, row: dict, rng: random.Random) -> dict:
    """The record with its one hostile value."""
    name, row = kind.name, dict(row)
    if name in TEXT_VALUES:
        row[text_column(spec)] = TEXT_VALUES[name]
    elif name == "invalid_utf8":
        row[text_column(spec)] = b"caf\xe9 \xff\xfe \xc3("
    elif name == "huge_string_1mb":
        row[text_column(spec)] = "A" * (1 << 20)
    elif name == "nested_json":
        row[text_column(spec)] = {"first": "Ana", "tags": ["x", "y"], "deep": {"n": [1, 2]}}
    elif name == "nested_json_number":
        row[number_column(spec)] = {"value": 12.5, "currency": "EUR"}
    elif name == "sql_key":
        row[spec.record_key] = f"{row[spec.record_key]}' OR '1'='1"
    elif name == "null_byte_key":
        row[spec.record_key] = f"{row[spec.record_key]}\x00"
    elif name in ("year_9999", "year_1", "impossible_date"):
        col = time_column(spec)
        when = datetime(9999, 12, 31, 23, 59, 59) if name == "year_9999" else datetime(1, 1, 1, 0, 0, 0)
        if name == "impossible_date":
            row[col] = _format_time(spec, datetime(2025, 2, 28, 10)).replace("2025-02-28", "2025-02-30").replace(
                "28/02/2025", "30/02/2025")
        elif spec.format == "parquet" and spec.column_type(col) == "timestamp":
            row[col] = when.replace(tzinfo=timezone.utc)
        else:
            row[col] = _format_time(spec, when, spec.column_type(col) == "date")
    elif name == "negative_amount":
        row[amount_column(spec)[0]] = -round(rng.uniform(1, 500), 2)
    elif name == "nan_amount":
        row[number_column(spec)] = math.nan
    elif name == "huge_amount":
        row[number_column(spec)] = 1e30
    elif name == "overflow_amount":
        row[number_column(spec)] = "9" * 400
    elif name == "missing_key":
        row[spec.record_key] = None
    elif name == "duplicate_field":
        row[text_column(spec)] = "first value"   # the writer gives the field a second time
    return row
