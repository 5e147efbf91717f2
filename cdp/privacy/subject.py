"""Who a request names: through silver.identity_records and gold.identity_map to the customers, then every record,
source row, order and identifier value they hold. Only the person's own ids and values reach the driver."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.sources import SourceSpec
from cdp.io import Lakehouse
from cdp.privacy.requests import ErasureRequest
from cdp.silver.standardize import normalize_email
from cdp.tables import IDENTITY_JUNK_VALUES, IDENTITY_MAP, IDENTITY_RECORDS, INTERACTIONS, ORDER_LINES, ORDERS

# identity_records columns that single a person out (names, birth dates and addresses are shared by many people:
# their rows go by record, but a value alone names no one)
UNIQUE_ATTRIBUTES = ("email", "email_raw", "phone", "phone_raw", "loyalty_id", "device_id", "cookie_id",
                     "facebook_handle", "twitter_handle", "instagram_handle", "review_handle")
# the source columns an identity mapping maps onto them (bronze rows are matched on these too)
UNIQUE_FIELDS = ("email", "phone", "loyalty_id", "device_id", "cookie_id",
                 "facebook_handle", "twitter_handle", "instagram_handle", "review_handle")
TEXT_MATCH_MIN_CHARS = 6


@dataclass(frozen=True)
class Subject:
    """Everything the lakehouse holds of the people one request names (their own ids and values: small)."""

    customer_ids: tuple[str, ...] = ()
    record_ids: tuple[str, ...] = ()
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)   # source -> record keys of its bronze rows
    interaction_ids: tuple[str, ...] = ()
    order_ids: tuple[str, ...] = ()
    values: tuple[str, ...] = ()   # unique identifier values, lower case, that no one else's record holds
    shared_by: int = 0   # customers an email or phone leads to, when more than one: it names no one person

    @property
    def found(self) -> bool:
        return bool(self.customer_ids or self.record_ids)

    @property
    def shared(self) -> bool:
        return self.shared_by > 1

    def rows(self) -> list[tuple[str, str]]:
        """(kind, value) rows: the source frame every erasure MERGE joins on."""
        out = [("customer", v) for v in self.customer_ids] + [("record", v) for v in self.record_ids]
        out += [(f"key:{s}", k) for s, keys in sorted(self.keys.items()) for k in keys]
        out += [("interaction", v) for v in self.interaction_ids] + [("order", v) for v in self.order_ids]
        return out + [("value", v) for v in self.values] + [("text", v) for v in self.text_values]

    @property
    def text_values(self) -> tuple[str, ...]:
        """The values searched for inside free text (a quarantined row's raw line, a landing file's line): those long
        enough not to be a common word."""
        return tuple(v for v in self.values if len(v) >= TEXT_MATCH_MIN_CHARS)


def _ids(df: DataFrame, column: str) -> tuple[str, ...]:
    return tuple(sorted({r[0] for r in df.select(column).where(F.col(column).isNotNull()).distinct().collect()}))


def normalized_value(lake: Lakehouse, settings: Settings, req: ErasureRequest) -> str | None:
    """The request's value as silver stores it: an email through silver's normalize_email (a one-row frame), a phone
    in E.164 by silver's parser, a customer id as given; None when it does not normalise."""
    if req.kind == "email":
        s = settings.silver
        return lake.spark.createDataFrame([(req.value,)], "v string").select(
            normalize_email(F.col("v"), s.email_gmail_rules, s.email_strip_plus_tags)).first()[0]
    if req.kind == "phone":
        return req.phone_e164(settings.silver.default_phone_region)
    return req.value


def matching_records(lake: Lakehouse, settings: Settings, req: ErasureRequest) -> DataFrame:
    """identity_records rows the request names (record_id): its email or phone, raw or normalised as silver does."""
    if req.kind == "customer_id":
        return lake.read(IDENTITY_MAP).where(F.col("customer_id") == F.lit(req.value)).select("record_id")
    normal = normalized_value(lake, settings, req)
    column = "email" if req.kind == "email" else "phone"
    hit = F.lower(F.trim(f"{column}_raw")) == F.lit(req.value.lower())
    if normal:
        hit = hit | (F.col(column) == F.lit(normal))
    return lake.read(IDENTITY_RECORDS).where(hit).select("record_id")


def resolve_subject(lake: Lakehouse, settings: Settings, specs: list[SourceSpec], req: ErasureRequest) -> Subject:
    """The request's person, their records, source rows, orders and unique identifier values. An email or phone whose
    records belong to more than one customer (a family phone, a placeholder email, a shop's own address) names no
    one: the subject is `shared_by` that many customers, found no one, and none of their ids reach the driver."""
    if not (lake.exists(IDENTITY_RECORDS) and lake.exists(IDENTITY_MAP)):
        return Subject()
    matched = matching_records(lake, settings, req)
    idmap = lake.read(IDENTITY_MAP)
    if req.kind != "customer_id":
        holders = idmap.join(matched, "record_id").select("customer_id").distinct().count()
        if holders > 1:
            return Subject(shared_by=holders)
    direct = set(_ids(matched, "record_id"))
    if not direct:
        return Subject()
    customers = _ids(idmap.where(F.col("record_id").isin(list(direct))), "customer_id")
    mapped = idmap.where(F.col("customer_id").isin(list(customers))) if customers else idmap.limit(0)
    record_ids = tuple(sorted(direct | set(_ids(mapped, "record_id"))))
    records = lake.read(IDENTITY_RECORDS).where(F.col("record_id").isin(list(record_ids)))

    keys: dict[str, set[str]] = {}
    for r in records.select("source", "source_record_key").collect():   # the person's records
        keys.setdefault(r[0], set()).add(r[1])
    touch = lake.read(INTERACTIONS).where(F.col("identity_record_id").isin(list(record_ids))).select(
        "interaction_id", "source", "source_record_key").collect()          # the person's own touchpoints
    for r in touch:
        keys.setdefault(r[1], set()).add(r[2])
    by_name = {s.name: s for s in specs}
    order_sources = [s for s in keys if s in by_name and by_name[s].silver.detail == "orders"]
    order_ids: tuple[str, ...] = ()
    if order_sources and lake.exists(ORDERS):
        wanted = [k for s in order_sources for k in keys[s]]
        order_ids = _ids(lake.read(ORDERS).where(F.col("source_record_key").isin(wanted)), "order_id")
    if order_ids and lake.exists(ORDER_LINES):
        lines = _ids(lake.read(ORDER_LINES).where(F.col("order_id").isin(list(order_ids))), "order_line_id")
        for s in specs:
            if s.silver.detail == "order_lines":
                keys.setdefault(s.name, set()).update(lines)
    return Subject(customers, record_ids, {s: tuple(sorted(k)) for s, k in keys.items()},
                   tuple(sorted(r[0] for r in touch)), order_ids, unique_values(lake, records, record_ids))


def unique_values(lake: Lakehouse, records: DataFrame, record_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The identifier values of these records that no other record holds and that are not junk (a shared family
    phone or a placeholder email is not this person's to erase), lower case."""
    def values(df: DataFrame) -> DataFrame:
        cols = [F.lower(F.trim(F.col(c).cast("string"))) for c in UNIQUE_ATTRIBUTES]
        return (df.select(F.explode(F.array_union(F.array(*cols), F.map_values("custom_attributes"))).alias("value"))
                .where(F.col("value").isNotNull() & (F.length("value") > 0)))

    mine = {r[0] for r in values(records).distinct().collect()}
    if not mine:
        return ()
    others = values(lake.read(IDENTITY_RECORDS).where(~F.col("record_id").isin(list(record_ids))))
    shared = {r[0] for r in others.where(F.col("value").isin(list(mine))).distinct().collect()}
    if lake.exists(IDENTITY_JUNK_VALUES):
        junk = lake.read(IDENTITY_JUNK_VALUES).select(F.lower("value").alias("value"))
        shared |= {r[0] for r in junk.where(F.col("value").isin(list(mine))).distinct().collect()}
    return tuple(sorted(mine - shared))
