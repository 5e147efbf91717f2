"""Registering lakehouse tables in the session's metastore catalog (Hive metastore, AWS Glue, Unity Catalog).

Tables are read by path everywhere in cdp; a BI tool or an analyst on a cluster often wants names instead. With
`catalog.database` set, the `publish` step registers every existing table of `catalog.layers` (gold by default)
as an external Delta table `<database>.<table>` over its location: the catalog only points at the Delta log, so
a later write to the table is what a query of the name sees, and registering again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.errors import ConfigError
from cdp.io import Lakehouse
from cdp.tables import REGISTERED, Table


@dataclass(frozen=True)
class Registration:
    table: Table
    name: str        # <database>.<table> in the catalog
    location: str
    created: bool    # False: it was registered already, at the same location


def quoted(name: str) -> str:
    """`a`.`b` for a dotted name (catalog.schema or schema.table)."""
    return ".".join(f"`{part}`" for part in name.split("."))


def catalog_name(database: str, t: Table) -> str:
    return f"{database}.{t.name}"


def tables_to_register(lake: Lakehouse, layers: list[str]) -> list[Table]:
    """The registered tables of these layers that exist in this lakehouse (bronze tables are per source: not here)."""
    return [t for t in REGISTERED if t.layer in layers and lake.exists(t)]


def registered_location(spark, name: str) -> str | None:
    """Where the catalog's table `name` points; None when the catalog has no such table."""
    if not spark.catalog.tableExists(name):
        return None
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {quoted(name)}").where("col_name = 'Location'").collect()
    return rows[0]["data_type"] if rows else None


def same_location(a: str, b: str) -> bool:
    return a.removeprefix("file:").rstrip("/") == b.removeprefix("file:").rstrip("/")


def register_tables(lake: Lakehouse, database: str, layers: list[str]) -> list[Registration]:
    """CREATE the database if needed and an external Delta table per existing table; a name already registered
    at another location is a ConfigError (the catalog is not ours to repoint)."""
    spark = lake.spark
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {quoted(database)}")
    done = []
    for t in tables_to_register(lake, layers):
        name, location = catalog_name(database, t), lake.location(t)
        current = registered_location(spark, name)
        if current is not None and not same_location(current, location):
            raise ConfigError(f"catalog table {name} already points at {current}, not at this lakehouse's "
                              f"{location}; drop it (DROP TABLE {name}) or set another catalog.database")
        if current is None:
            escaped = location.replace("'", "\\'")
            spark.sql(f"CREATE TABLE IF NOT EXISTS {quoted(name)} USING DELTA LOCATION '{escaped}'")
        done.append(Registration(t, name, location, created=current is None))
    return done
