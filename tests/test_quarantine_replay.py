"""An order history older than its source declares, on real Spark + Delta, as a user meets it: a batch mostly
quarantined fails the silver step in one line and stays pending until the configuration is fixed; after the fix it
goes through, and the time window holds at its edges (1970, a day ahead of the run); `cdp quarantine --replay`
then brings back what the next fix allows, exactly once, recorded and reconciled."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import lakes
import pytest
from frame_asserts import assert_frame_equal
from pyspark.sql import functions as F

from cdp.config import DEFAULT_CONF_DIR, load_settings
from cdp.config.sources import load_sources
from cdp.errors import QualityGateFailed
from cdp.io import Lakehouse
from cdp.silver.replay import replay_quarantine
from cdp.tables import INTERACTIONS, QUARANTINE, QUARANTINE_REPLAYS, RECONCILIATION, SILVER_BATCHES

pytestmark = pytest.mark.slow   # one flow of five bronze + silver runs (refusal, fix, two replays): ~35-80 s

EXAMPLE = DEFAULT_CONF_DIR / "examples" / "orders_only"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def shop(conf_dir, root, history_starts: str | None = None):
    """The suite's configuration with the orders-only example's source (and its identity attribute) alone."""
    conf = root / "conf"
    shutil.copytree(conf_dir, conf)
    shutil.rmtree(conf / "sources")
    shutil.copytree(EXAMPLE / "sources", conf / "sources")
    shutil.copy(EXAMPLE / "identity.yaml", conf / "identity.yaml")
    declare_history(conf, history_starts)
    return conf, load_settings("local", [f"paths.reports={root}/reports"], conf)


def declare_history(conf, history_starts: str | None):
    """history_starts in the source's file, or none (the default window)."""
    path = conf / "sources" / "shop_orders.yaml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("history_starts:")]
    if history_starts:
        lines.insert(1, f"history_starts: {history_starts}")
    path.write_text("\n".join(lines) + "\n")


def deliver(root, name: str, orders: list[tuple[str, str, str, str]]):
    folder = root / "landing" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["customer_id,order_id,ordered_at,amount", *(",".join(o) for o in orders)]
    (folder / name).write_text("\n".join(rows) + "\n")


def land_and_build(lake, conf, root, run_id):
    settings = load_settings("local", [f"paths.reports={root}/reports"], conf)
    return lakes.land_and_build(lake, settings, root / "landing", run_id, now=NOW)[1]


def orders_in_silver(lake):
    return lake.read(INTERACTIONS).select("source_record_key", "event_ts")


def quarantined(lake):
    return lake.read(QUARANTINE).where("stage = 'silver'").select("record_key", "reason")


FUTURE = (NOW + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
ORDERS = [("K1", "O1", "1997-03-02T10:00:00Z", "10.0"),     # before the history the source first declares
          ("K1", "O2", "1997-07-02T10:00:00Z", "abc"),      # no amount: stays quarantined whatever the window
          ("K2", "O3", "1997-08-02T10:00:00Z", "11.0"),
          ("K3", "O4", "1970-01-01T00:00:00Z", "12.0"),     # the first plausible instant of the default window
          ("K3", "O5", "1969-12-31T23:59:59Z", "13.0"),     # ... and the last implausible one
          ("K4", "O6", FUTURE, "14.0"),                     # three days ahead of the run: not yet happened
          ("K4", "O7", "2005-03-01T10:00:00Z", "15.0"),
          *[("K5", f"O{8 + i}", f"1998-0{1 + i}-05T10:00:00Z", "9.0") for i in range(3)]]


@pytest.fixture(scope="module")
def history(spark, conf_dir, tmp_path_factory):
    """An order history older than its source says, through every fix a user makes:
    1. history_starts 2000-01-01: most of the batch is implausible, so silver refuses it (and keeps it pending);
    2. history_starts 1997-06-01, `cdp run --resume`: the batch goes through, O1 quarantined for its time;
    3. no history_starts (the default, 1970), `cdp quarantine --replay` twice."""
    root = tmp_path_factory.mktemp("history")
    conf, _ = shop(conf_dir, root, history_starts="2000-01-01")
    deliver(root, "o1.csv", ORDERS)
    lake = Lakehouse(spark, str(root / "lakehouse"))
    seen: dict = {}
    with pytest.raises(QualityGateFailed) as refused:
        land_and_build(lake, conf, root, "run-1")
    seen["refusal"] = str(refused.value)
    seen["pending"] = not lake.exists(SILVER_BATCHES) or \
        lake.read(SILVER_BATCHES).where("source = 'shop_orders'").count() == 0
    seen["silver_1"] = lake.read(INTERACTIONS).count() if lake.exists(INTERACTIONS) else 0
    seen["quarantine_1"] = sorted(quarantined(lake).collect())
    declare_history(conf, "1997-06-01")
    land_and_build(lake, conf, root, "run-2")
    seen["silver_2"] = sorted(orders_in_silver(lake).select("source_record_key").collect())
    seen["quarantine_2"] = sorted(quarantined(lake).collect())
    declare_history(conf, None)
    settings = load_settings("local", [f"paths.reports={root}/reports"], conf)
    seen["replay_1"] = replay_quarantine(lake, load_sources(settings), settings, "replay-1", NOW, source="shop_orders",
                                         reason="implausible_time")
    seen["after_1"] = (sorted(orders_in_silver(lake).collect()), sorted(quarantined(lake).collect()))
    seen["replay_2"] = replay_quarantine(lake, load_sources(settings), settings, "replay-2", NOW)
    return lake, seen


def keys(rows) -> list[str]:
    return [r[0] for r in rows]


def test_a_batch_mostly_quarantined_fails_in_one_line_and_stays_pending(history):
    lake, seen = history
    line = seen["refusal"]
    assert "\n" not in line
    for part in ("shop_orders: 9 of 10 rows", "implausible_time:ordered_at (9 rows)", "shop_orders.yaml: key "
                 "'history_starts' (the earliest plausible event time, now 2000-01-01"):
        assert part in line, line
    # nothing of the batch went forward, and it is still pending; the quarantine shows why
    assert (seen["pending"], seen["silver_1"]) == (True, 0)
    assert seen["quarantine_1"] == sorted((key, "implausible_time:ordered_at") for key in
                                          ("O1", "O2", "O3", "O4", "O5", "O6", "O8", "O9", "O10"))


def test_after_the_fix_the_same_batch_goes_through_and_the_window_holds(history):
    _, seen = history
    assert keys(seen["silver_2"]) == ["O10", "O3", "O7", "O8", "O9"]   # half the batch: not more than the share
    assert seen["quarantine_2"] == [("O1", "implausible_time:ordered_at"), ("O2", "bad_type:amount"),
                                    ("O4", "implausible_time:ordered_at"), ("O5", "implausible_time:ordered_at"),
                                    ("O6", "implausible_time:ordered_at")]


def test_replay_brings_back_what_the_fix_allows_and_keeps_the_rest_with_its_reason(history):
    _, seen = history
    assert [(s.source, s.replayed, s.returned, s.still) for s in seen["replay_1"].sources] == \
        [("shop_orders", 4, 2, {"implausible_time:ordered_at": 2})]
    silver, quarantine = seen["after_1"]
    assert keys(silver) == ["O1", "O10", "O3", "O4", "O7", "O8", "O9"]
    assert quarantine == [("O2", "bad_type:amount"), ("O5", "implausible_time:ordered_at"),
                          ("O6", "implausible_time:ordered_at")]


def test_replay_is_recorded_and_reconciled(history):
    lake, _ = history
    assert_frame_equal(lake.read(QUARANTINE_REPLAYS).where("run_id = 'replay-1'")
                       .select("source", "reason", "outcome", "reason_now", "rows"),
                       [("shop_orders", "implausible_time:ordered_at", "returned", None, 2),
                        ("shop_orders", "implausible_time:ordered_at", "still_quarantined",
                         "implausible_time:ordered_at", 2)],
                       "source string, reason string, outcome string, reason_now string, rows bigint")
    audit = lake.read(RECONCILIATION).where("run_id = 'replay-1'")
    assert_frame_equal(audit.select("stage", "target_table", "rows_in", "rows_out", "rows_quarantined", "balanced"),
                       [("replay", "silver.interactions", 4, 2, 2, True),
                        ("replay", "silver.identity_records", 4, 2, 2, True)],
                       "stage string, target_table string, rows_in bigint, rows_out bigint, rows_quarantined bigint, "
                       "balanced boolean")


def test_replaying_again_changes_nothing(history):
    lake, seen = history
    assert (sorted(orders_in_silver(lake).collect()), sorted(quarantined(lake).collect())) == seen["after_1"]
    assert [(s.replayed, s.returned) for s in seen["replay_2"].sources] == [(3, 0)]
    assert {r.outcome for r in lake.read(QUARANTINE_REPLAYS).where(F.col("run_id") == "replay-2").collect()} == \
        {"still_quarantined"}
