"""A company with nothing but its order history (customer id, order id, time, amount), declared in conf with the
example files of conf/examples/orders_only/: the whole pipeline gives churn scores, customer value and actions
(slow, end to end, real Spark + Delta + GX + MLflow)."""

from __future__ import annotations

import csv
import random
import shutil
from datetime import datetime, timedelta

import pytest
from conftest import test_settings

from cdp.config import DEFAULT_CONF_DIR
from cdp.io import Lakehouse
from cdp.pipeline import run_pipeline
from cdp.tables import CHURN_SCORES, CUSTOMER_VALUE, CUSTOMERS, NEXT_BEST_ACTION

pytestmark = pytest.mark.slow

CUSTOMERS_N = 600
START, DAYS = datetime(2024, 1, 1), 730


def write_orders(path, seed: int = 3) -> int:
    """Orders of customers who buy at their own Poisson rate until they drop out for good, each spending around
    their own mean (the BG/NBD and Gamma-Gamma stories); returns how many customers ordered."""
    rng = random.Random(seed)
    rows = []
    for c in range(CUSTOMERS_N):
        rate = rng.gammavariate(2.0, 1 / 40)                 # purchases per day, mean 1 in 20 days
        t = rng.uniform(0, 300)
        leave = t + rng.expovariate(1 / 400)                  # days until the customer leaves
        nu = rng.gammavariate(4.0, 1 / 15)                    # spend: Gamma(6, nu), nu ~ Gamma(4, 15): mean 30
        n = 0
        while t < min(leave, DAYS):
            n += 1
            rows.append((f"K{c:04d}", f"O{c:04d}-{n:03d}", (START + timedelta(days=t)).isoformat() + "Z",
                         round(rng.gammavariate(6.0, 1 / nu), 2)))
            t += rng.expovariate(rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "order_id", "ordered_at", "amount"])
        w.writerows(rows)
    return len({r[0] for r in rows})


@pytest.fixture(scope="module")
def orders_only(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("orders_only")
    conf = root / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, conf, ignore=shutil.ignore_patterns("examples"))
    shutil.rmtree(conf / "sources")
    shutil.copytree(DEFAULT_CONF_DIR / "examples" / "orders_only", conf, dirs_exist_ok=True)
    buyers = write_orders(root / "landing" / "orders" / "orders_2025.csv")
    settings = test_settings(conf, root)
    run_pipeline(settings, spark)
    return Lakehouse.from_settings(spark, settings), buyers


def test_one_customer_per_customer_number(orders_only):
    lake, buyers = orders_only
    assert lake.read(CUSTOMERS).count() == buyers


def test_orders_alone_give_scores_value_and_actions(orders_only):
    lake, buyers = orders_only
    scores = lake.read(CHURN_SCORES)
    assert scores.count() > 0 and scores.where("churn_probability IS NULL").count() == 0
    assert lake.read(CUSTOMER_VALUE).count() == buyers
    # no CRM, so no consent anywhere: every at-risk customer is listed, none is contacted
    actions = {r.action for r in lake.read(NEXT_BEST_ACTION).collect()}
    assert actions == {"no_consented_channel"}
