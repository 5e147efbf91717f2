"""`cdp sql` names tables layer.table: the names become Delta locations, strings and identifiers stay as written."""

import pytest

from cdp.io import Lakehouse
from cdp.sql import qualify_tables

LAKE = Lakehouse(None, "/lh")   # qualify_tables reads only the root


@pytest.mark.parametrize("query, expected", [
    ("SELECT * FROM gold.customers", "SELECT * FROM delta.`/lh/gold/customers`"),
    ("select c.city from gold.customers c join gold.identity_map m using (customer_id)",
     "select c.city from delta.`/lh/gold/customers` c join delta.`/lh/gold/identity_map` m using (customer_id)"),
    ("SELECT count(*) FROM bronze.pos_sales", "SELECT count(*) FROM delta.`/lh/bronze/pos_sales`"),
    ("SELECT 'gold.customers' AS label, `gold.customers` FROM silver.interactions",
     "SELECT 'gold.customers' AS label, `gold.customers` FROM delta.`/lh/silver/interactions`"),
    ("SELECT x.gold FROM t x", "SELECT x.gold FROM t x"),
], ids=["one", "join", "bronze_source", "quoted_untouched", "not_a_table"])
def test_table_names_become_delta_locations(query, expected):
    assert qualify_tables(query, LAKE) == expected


def test_an_unknown_table_is_named():
    with pytest.raises(ValueError, match="unknown table 'gold.custmers'"):
        qualify_tables("SELECT * FROM gold.custmers", LAKE)
