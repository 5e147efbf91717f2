"""Custom identity attributes (conf/identity.yaml `custom_attributes`): silver normalises their values into
silver.identity_records.custom_attributes, a map, so the table's schema is the same for every company
(cdp.silver.canonical.custom_attribute_values); identity resolution turns the map back into one column per
attribute, so rules, comparisons, blocking, junk guards, caps and survivorship use them like the built-in columns.

    silver:   custom_attribute_values(source_columns, config.custom_attributes) -> the map column
    identity: records.transform(with_custom_attributes(config))                  -> one column per attribute
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.identity import IdentityConfig
from cdp.config.identity_attributes import CustomAttribute

CUSTOM_COLUMN = "custom_attributes"


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
