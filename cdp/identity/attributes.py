"""Custom identity attributes (conf/identity.yaml `custom_attributes`): how silver normalises their values into
silver.identity_records.custom_attributes (a map, so the table's schema is the same for every company), and how
identity resolution turns the map back into one column per attribute, so rules, comparisons, blocking, junk
guards, caps and survivorship use them like the built-in columns.

    silver:   custom_attribute_values(source_columns, config.custom_attributes) -> the map column
    identity: records.transform(with_custom_attributes(config))                  -> one column per attribute
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.identity.config import CustomAttribute, IdentityConfig
from cdp.silver.standardize import fold_accents, to_date_safe

CUSTOM_COLUMN = "custom_attributes"


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


def with_custom_attributes(config: IdentityConfig):
    """One column per declared custom attribute, read from the custom_attributes map (NULL when the record has
    none, or the table predates the map); date kinds as dates."""
    def step(records: DataFrame) -> DataFrame:
        def column(name: str, attribute: CustomAttribute) -> Column:
            if CUSTOM_COLUMN not in records.columns:
                return F.lit(None).cast("date" if attribute.kind == "date" else "string")
            value = F.col(CUSTOM_COLUMN).getItem(name)
            return value.cast("date") if attribute.kind == "date" else value
        wanted = {n: column(n, a) for n, a in config.custom_attributes.items() if n not in records.columns}
        return records.withColumns(wanted) if wanted else records
    return step
