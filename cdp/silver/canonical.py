"""Typed source rows -> the canonical silver model (interactions, identity records, orders, order lines).

Pure transforms driven by each source's `silver:` mapping in conf/sources/<source>.yaml.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import SilverSettings
from cdp.config.identity_attributes import CustomAttribute
from cdp.config.sources import SourceSpec, ValueSpec
from cdp.silver.standardize import (
    display_name,
    fold_accents,
    match_name,
    normalize_country,
    normalize_currency,
    normalize_email,
    normalize_gender,
    normalize_handle,
    normalize_phone,
    normalize_postal_code,
    split_full_name,
    to_date_safe,
)
from cdp.tables import LINEAGE

INTERACTION_TYPES = {"amount": "double", "csat": "int", "nps": "int", "stars": "int"}
# the typed row's values that went on as NULL (column -> value as delivered), set by cdp.silver.typed
DEFECTS = "_defects"


def value_of(v: ValueSpec) -> Column:
    if v.value is not None:
        return F.lit(v.value)
    col = F.lower(F.trim(F.col(v.column)))
    if not v.map:
        return col
    recoded = F.coalesce(*[F.when(col == F.lit(k.lower()), F.lit(t)) for k, t in v.map.items()])
    return F.coalesce(recoded, F.lit(v.default) if v.default is not None else col)


def record_key(spec: SourceSpec) -> Column:
    return F.col(spec.record_key).cast("string")


def interaction_id(spec: SourceSpec) -> Column:
    return F.sha2(F.concat_ws("|", F.lit(spec.name), record_key(spec)), 256)


def interactions(spec: SourceSpec, settings: SilverSettings):
    m = spec.silver.interaction

    def step(df: DataFrame) -> DataFrame:
        def field(name: str) -> Column:
            src = m.fields.get(name)
            col = F.col(src) if src else F.lit(None)
            if name == "currency":
                return normalize_currency(col.cast("string"))
            return col.cast(INTERACTION_TYPES.get(name, "string"))

        mapped = set(spec.mapped_columns) | {spec.record_key}
        rest = [c.name for c in spec.columns if c.name not in mapped]
        declared = (
            F.map_filter(F.create_map(*[x for c in rest for x in (F.lit(c), F.col(c).cast("string"))]), lambda k, v: v.isNotNull())
            if rest else F.create_map().cast("map<string,string>")
        )
        # columns the export carried but the YAML does not declare (schema drift) stay with the interaction
        rescued = F.coalesce(F.from_json(F.col("_rescued_data"), "map<string,string>"), F.create_map().cast("map<string,string>"))
        attributes = F.map_concat(declared, rescued)
        return df.select(
            interaction_id(spec).alias("interaction_id"),
            F.lit(spec.name).alias("source"),
            F.lit(spec.channel).alias("channel"),
            value_of(m.event_type).alias("event_type"),
            F.col(m.event_time).alias("event_ts"),
            F.to_date(F.col(m.event_time)).alias("event_date"),
            record_key(spec).alias("source_record_key"),
            identity_record_id(spec, settings).alias("identity_record_id"),
            *[field(f).alias(f) for f in ("amount", "currency", "product_id", "category", "campaign_id",
                                          "csat", "nps", "stars", "text", "reason", "outcome")],
            attributes.alias("attributes"),
            F.col(DEFECTS).alias("defects"),
            *LINEAGE,
        )
    return step


# ---- custom identity attributes (conf/identity.yaml custom_attributes): one map column, the same for every company

def empty_map() -> Column:
    return F.create_map().cast("map<string,string>")


_STEPS = {
    "trim": lambda c: F.regexp_replace(c, r"(?U)^\s+|\s+$", ""),
    "upper": F.upper,
    "lower": F.lower,
    "digits_only": lambda c: F.regexp_replace(c, r"[^0-9]", ""),
    "strip_punctuation": lambda c: F.regexp_replace(c, r"[\p{P}\p{S}]", ""),
    "fold_accents": fold_accents,
    "collapse_spaces": lambda c: F.trim(F.regexp_replace(c, r"(?U)\s+", " ")),
}


def normalized(raw: Column, attribute: CustomAttribute) -> Column:
    """The attribute's value after its normalization steps ("" -> NULL); a date kind parsed and written
    yyyy-MM-dd (NULL when it does not parse: the source column's on_bad_value decides what that costs)."""
    value = raw.cast("string")
    for step in attribute.steps:
        value = _STEPS[step](value)
    value = F.nullif(value, F.lit(""))
    if attribute.kind == "date":
        value = F.date_format(to_date_safe(value), "yyyy-MM-dd")
    return value


def custom_attribute_values(columns: dict[str, Column], attributes: dict[str, CustomAttribute]) -> Column:
    """{attribute: normalised value} for the attributes a source maps (`columns`: attribute -> its raw column);
    attributes without a value are left out, so the map holds only what the record says."""
    mapped = [(name, normalized(col, attributes[name])) for name, col in columns.items() if name in attributes]
    if not mapped:
        return empty_map()
    values = F.create_map(*[x for name, value in mapped for x in (F.lit(name), value)])
    return F.map_filter(values, lambda _k, v: v.isNotNull())


def _raw_fields(spec: SourceSpec):
    """raw(attribute): the source column the identity mapping gives the attribute, as a string (NULL if none)."""
    m = spec.silver.identity

    def raw(name: str) -> Column:
        src = m.fields.get(name)
        return F.col(src).cast("string") if src else F.lit(None).cast("string")
    return raw


def _email(raw, settings: SilverSettings) -> Column:
    return normalize_email(raw("email"), settings.email_gmail_rules, settings.email_strip_plus_tags)


def _phone(raw, settings: SilverSettings, country: Column, mapped: bool) -> Column:
    """E.164 by libphonenumber (a pandas UDF); a source that maps no phone gets NULL without it: Spark sends every
    row through a Python UDF whatever its input (2.5M clickstream rows at 100k customers, for nothing)."""
    if not mapped:
        return F.lit(None).cast("string")
    return normalize_phone(raw("phone"), F.coalesce(country, F.lit(settings.default_phone_region)),
                           settings.default_phone_region)


def identity_attributes(spec: SourceSpec, settings: SilverSettings) -> dict[str, Column]:
    """The standardised identity attributes of a typed source row (silver.identity_records' columns)."""
    m = spec.silver.identity
    raw = _raw_fields(spec)
    first, last = raw("first_name"), raw("last_name")
    if "full_name" in m.fields:
        split_first, split_last = split_full_name(raw("full_name"))
        first, last = F.coalesce(first, split_first), F.coalesce(last, split_last)
    country = normalize_country(raw("country"))
    handles = {p: normalize_handle(raw(f"{p}_handle")) for p in ("facebook", "twitter", "instagram", "review")}
    if m.handle_by_platform:
        platform = F.lower(F.trim(F.col(m.handle_by_platform.platform)))
        handle = normalize_handle(F.col(m.handle_by_platform.handle))
        handles["facebook"] = F.coalesce(handles["facebook"], F.when(platform == "facebook", handle))
        handles["twitter"] = F.coalesce(handles["twitter"], F.when(platform.isin("twitter", "x"), handle))
        handles["instagram"] = F.coalesce(handles["instagram"], F.when(platform == "instagram", handle))
    return {
        "email": _email(raw, settings),
        "email_raw": raw("email"),
        "phone": _phone(raw, settings, country, "phone" in m.fields),
        "phone_raw": raw("phone"),
        "first_name": display_name(first),
        "last_name": display_name(last),
        "first_name_match": match_name(first),
        "last_name_match": match_name(last),
        "full_name_display": display_name(F.concat_ws(" ", first, last)),
        "birth_date": F.col(m.fields["birth_date"]).cast("date") if "birth_date" in m.fields else F.lit(None).cast("date"),
        "gender": normalize_gender(raw("gender")),
        "street": display_name(raw("street")),
        "postal_code": normalize_postal_code(raw("postal_code")),
        "city": display_name(raw("city")),
        "region": display_name(raw("region")),
        "country": country,
        "loyalty_id": F.upper(F.trim(raw("loyalty_id"))),
        "device_id": F.trim(raw("device_id")),
        "cookie_id": F.trim(raw("cookie_id")),
        **{f"{p}_handle": h for p, h in handles.items()},
        # attributes of conf/identity.yaml custom_attributes, normalised as declared there
        "custom_attributes": custom_attribute_values({n: raw(n) for n in spec.custom_attributes},
                                                     spec.custom_attributes),
    }


def _fingerprint(attributes: dict[str, Column]) -> Column:
    """An event stream's identity record key: a hash of the row's identity attributes (rows with the same
    identifiers are one record). An empty custom_attributes map is left out, so a source mapping no custom
    attribute keeps the record ids it had before they existed."""
    if "custom_attributes" in attributes:
        custom = attributes["custom_attributes"]
        attributes = {**{k: v for k, v in attributes.items() if k != "custom_attributes"},
                      "custom_attributes": F.when(F.size(custom) > 0, custom)}
    return F.sha2(F.to_json(F.struct(*[c.alias(n) for n, c in attributes.items()])), 256).substr(1, 32)


def identity_record_id(spec: SourceSpec, settings: SilverSettings) -> Column:
    """The silver.identity_records record_id a typed source row contributes to (NULL when the source has no
    identity mapping): '<source>:<record key>', or '<source>:<fingerprint>' for event streams."""
    m = spec.silver.identity
    if m is None:
        return F.lit(None).cast("string")
    key = _fingerprint(identity_attributes(spec, settings)) if m.distinct else record_key(spec)
    return F.concat_ws(":", F.lit(spec.name), key)


def standardised_identifiers(spec: SourceSpec, settings: SilverSettings) -> list[tuple[str, str, Column]]:
    """(field, column, standardised value) for the identity mapping's email and phone: a present value that
    standardises to NULL did not parse (cdp.silver.typed flags or quarantines it)."""
    m = spec.silver.identity
    if m is None:
        return []
    raw = _raw_fields(spec)
    standardised = {"email": lambda: _email(raw, settings),
                    "phone": lambda: _phone(raw, settings, normalize_country(raw("country")), True)}
    return [(f, m.fields[f], standardised[f]()) for f in ("email", "phone") if f in m.fields]


def latest_defects() -> Column:
    """Aggregate: the `defects` of an event stream's rows that make one identity record, one entry per column
    (the value of the latest observation that flagged it)."""
    flagged = F.collect_list(F.when(F.size("defects") > 0, F.struct(
        F.col("observed_at"), F.map_entries("defects").alias("entries"))))

    def later_wins(acc: Column, row: Column) -> Column:
        newer = F.map_from_entries(row["entries"])
        return F.map_concat(F.map_filter(acc, lambda k, _: ~F.array_contains(F.map_keys(newer), k)), newer)

    return F.aggregate(F.array_sort(flagged), F.create_map().cast("map<string,string>"), later_wins)


def identity_records(spec: SourceSpec, settings: SilverSettings):
    m = spec.silver.identity

    def step(df: DataFrame) -> DataFrame:
        attrs = identity_attributes(spec, settings)
        out = df.select(
            F.lit(spec.name).alias("source"), F.lit(spec.channel).alias("channel"),
            record_key(spec).alias("source_record_key"), F.col(m.observed_at or "_ingested_at").alias("observed_at"),
            *[c.alias(n) for n, c in attrs.items()], F.col(DEFECTS).alias("defects"), *LINEAGE,
        )
        if not m.distinct:
            return out.select(F.concat_ws(":", F.lit(spec.name), "source_record_key").alias("record_id"), "*")
        # event streams: one identity record per distinct set of identifiers (first time seen kept as the key)
        ids = list(attrs)
        # (rows of one fingerprint hold the same identifiers; a map column cannot be a grouping key)
        return (
            out.withColumn("_fingerprint", _fingerprint({c: F.col(c) for c in ids}))
            .groupBy("source", "channel", "_fingerprint")
            .agg(F.min_by("source_record_key", "observed_at").alias("source_record_key"),
                 F.max("observed_at").alias("observed_at"), *[F.first(c).alias(c) for c in ids],
                 latest_defects().alias("defects"), *[F.max_by(c, "_ingested_at").alias(c) for c in LINEAGE])
            .select(F.concat_ws(":", F.lit(spec.name), F.col("_fingerprint")).alias("record_id"), "source", "channel",
                    "source_record_key", "observed_at", *ids, "defects", *LINEAGE)
        )
    return step


ORDER_COLUMNS = ["order_id", "order_ts", "status", "payment_status", "payment_method", "currency", "total_amount",
                 "customer_email", "customer_phone", "loyalty_id", "device_id", "ship_city", "ship_postal_code", "ship_country"]
ORDER_LINE_COLUMNS = ["order_line_id", "order_id", "line_number", "product_id", "product_name", "category",
                      "quantity", "unit_price", "currency"]


def orders(spec: SourceSpec, settings: SilverSettings):
    def step(df: DataFrame) -> DataFrame:
        std = {
            "status": F.lower(F.trim("status")), "payment_status": F.lower(F.trim("payment_status")),
            "currency": normalize_currency(F.col("currency")),
            "customer_email": normalize_email(F.col("customer_email"), settings.email_gmail_rules, settings.email_strip_plus_tags),
            "customer_phone": normalize_phone(F.col("customer_phone"), F.coalesce(normalize_country(F.col("ship_country")),
                                              F.lit(settings.default_phone_region)), settings.default_phone_region),
            "ship_country": normalize_country(F.col("ship_country")),
        }
        return df.select(*[std.get(c, F.col(c)).alias(c) for c in ORDER_COLUMNS],
                         record_key(spec).alias("source_record_key"), *LINEAGE)
    return step


def order_lines(spec: SourceSpec, settings: SilverSettings):
    def step(df: DataFrame) -> DataFrame:
        return df.select(
            *[(normalize_currency(F.col(c)) if c == "currency" else F.col(c)).alias(c) for c in ORDER_LINE_COLUMNS],
            F.round(F.col("quantity") * F.col("unit_price"), 2).alias("line_amount"),
            *LINEAGE,
        )
    return step
