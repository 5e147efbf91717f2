"""Landing-file layout and deterministic writers (CSV, JSON lines, Parquet)."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.synth.people import PERSON_COLUMNS


@dataclass(frozen=True)
class SourceSpec:
    name: str
    folder: str
    prefix: str
    fmt: str  # csv | json | parquet
    columns: tuple[str, ...]
    arrow: tuple = ()  # pyarrow types for parquet sources

    @property
    def ext(self) -> str:
        return {"csv": "csv", "json": "jsonl", "parquet": "parquet"}[self.fmt]

    @property
    def record_key(self) -> str:
        return self.columns[0]

    def path(self, landing: Path, chunk: int) -> Path:
        return landing / self.folder / f"{self.prefix}_{chunk:05d}.{self.ext}"


_S, _I, _F = pa.string(), pa.int32(), pa.float64()

SOURCES: dict[str, SourceSpec] = {s.name: s for s in (
    SourceSpec("crm_customers", "crm", "customers", "csv", (
        "customer_ref", "first_name", "last_name", "email", "phone", "street", "city", "region",
        "postal_code", "country", "birth_date", "gender", "signup_date", "marketing_consent",
        "facebook_handle", "twitter_handle", "instagram_handle", "updated_at")),
    SourceSpec("loyalty_members", "loyalty", "members", "csv", (
        "loyalty_id", "first_name", "last_name", "email", "phone", "postal_code", "tier",
        "points_balance", "enrolled_at", "updated_at")),
    SourceSpec("ecommerce_orders", "ecommerce", "orders", "json", (
        "order_id", "order_ts", "customer_email", "customer_phone", "customer_name", "loyalty_id",
        "ship_street", "ship_city", "ship_postal_code", "ship_country", "status", "payment_method",
        "payment_status", "currency", "total_amount", "device_id")),
    SourceSpec("ecommerce_order_lines", "ecommerce", "order_lines", "parquet", (
        "order_line_id", "order_id", "line_number", "product_id", "product_name", "category",
        "quantity", "unit_price", "currency"), (_S, _S, _I, _S, _S, _S, _I, _F, _S)),
    SourceSpec("clickstream_events", "clickstream", "events", "json", (
        "event_id", "event_ts", "cookie_id", "device_id", "platform", "session_id", "event_type",
        "page_url", "product_id", "order_id", "login_email", "login_provider", "login_handle")),
    SourceSpec("email_events", "email", "events", "csv", (
        "email_event_id", "campaign_id", "campaign_name", "email", "event_type", "event_ts", "link_url")),
    SourceSpec("callcenter_contacts", "callcenter", "contacts", "csv", (
        "contact_id", "direction", "phone", "caller_name", "contact_time", "duration_seconds", "reason",
        "outcome", "campaign_id", "agent_id", "notes")),
    SourceSpec("store_visits", "store", "visits", "parquet", (
        "visit_id", "store_id", "store_city", "visit_ts", "loyalty_id", "receipt_email",
        "purchase_amount", "currency", "items_count"),
        (_S, _S, _S, pa.timestamp("us", tz="UTC"), _S, _S, _F, _S, _I)),
    SourceSpec("survey_responses", "surveys", "responses", "csv", (
        "response_id", "survey_type", "touchpoint", "email", "respondent_name", "csat", "nps",
        "comment", "submitted_at")),
    SourceSpec("suggestion_box", "suggestions", "suggestions", "json", (
        "suggestion_id", "submitted_at", "name", "email", "store_id", "text", "language")),
    SourceSpec("review_site", "reviews", "reviews", "json", (
        "review_id", "site", "handle", "display_name", "stars", "title", "text", "posted_at", "product_id")),
    SourceSpec("social_posts", "social", "posts", "json", (
        "post_id", "platform", "handle", "display_name", "profile_email", "text", "posted_at",
        "mentions_brand", "likes")),
)}
SOURCE_NAMES = tuple(sorted(SOURCES))
OWNER_COLUMNS = ("source", "record_key", "person_id")


def reset_dirs(landing: Path, truth: Path) -> None:
    """Remove previous output of the folders the generator owns, then recreate them."""
    dirs = sorted({landing / s.folder for s in SOURCES.values()}) + [truth / "record_owners", truth / "persons"]
    for d in dirs:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


def _write_jsonl(path: Path, columns, rows) -> None:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(encode(dict(zip(columns, r, strict=True))) + "\n" for r in rows)


def _write_parquet(path: Path, spec: SourceSpec, rows) -> None:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in spec.columns]
    arrays = []
    for values, typ in zip(cols, spec.arrow, strict=True):
        if pa.types.is_timestamp(typ):
            values = [None if v is None else v * 1_000_000 for v in values]
            arrays.append(pa.array(values, type=pa.int64()).cast(typ))
        else:
            arrays.append(pa.array(list(values), type=typ))
    schema = pa.schema([pa.field(c, t) for c, t in zip(spec.columns, spec.arrow, strict=True)])
    table = pa.Table.from_arrays(arrays, schema=schema)
    pq.write_table(table, path, compression="snappy")


def write_chunk(landing: Path, truth: Path, chunk: int, sinks: dict, owners: list, persons_rows: list) -> int:
    files = 0
    for name in SOURCE_NAMES:
        spec = SOURCES[name]
        rows = sinks[name]
        path = spec.path(landing, chunk)
        if spec.fmt == "csv":
            _write_csv(path, spec.columns, rows)
        elif spec.fmt == "json":
            _write_jsonl(path, spec.columns, rows)
        else:
            _write_parquet(path, spec, rows)
        files += 1
    _write_csv(truth / "record_owners" / f"record_owners_{chunk:05d}.csv", OWNER_COLUMNS, owners)
    _write_csv(truth / "persons" / f"persons_{chunk:05d}.csv", PERSON_COLUMNS, persons_rows)
    return files  # landing files only
