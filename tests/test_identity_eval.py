"""`cdp eval identity --labels FILE`: the resolution and each match-probability threshold against a user's own
labels (a clerical-review sample of pairs, or each record's entity), on hand-built identity tables with answers
worked out by hand; label mistakes are one line, before Spark starts when the file is local."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp.errors import CdpError
from cdp.identity.evaluate import check_labels, load_labels
from cdp.tables import IDENTITY_LINKS, IDENTITY_MAP, IDENTITY_MATCH_SCORES, IDENTITY_RECORDS

# Seven identity records; web:d1 is anonymous (no customer id). Deterministic links: a1-a2, b1-b2. Splink scored
# a2-a3 0.999 (linked: customer C1 = a1 a2 a3), b2-c1 0.95 and a1-c1 0.6 (near misses), a1-b1 0.97 vetoed.
# Truth: P1 = a1 a2 a3, P2 = b1 b2 c1. Deterministic components: {a1 a2} {a3} {b1 b2} {c1}: 4 customers.
RECORDS = ["crm:a1", "crm:a2", "web:a3", "crm:b1", "crm:b2", "web:c1", "web:d1"]
CUSTOMERS = {"crm:a1": "C1", "crm:a2": "C1", "web:a3": "C1", "crm:b1": "C2", "crm:b2": "C2", "web:c1": "C3"}
LINKS = [("crm:a1", "crm:a2", "email_exact"), ("crm:b1", "crm:b2", "phone_exact"), ("crm:a2", "web:a3", "probabilistic")]
SCORES = [("crm:a2", "web:a3", 0.999, False), ("crm:b2", "web:c1", 0.95, False), ("crm:a1", "web:c1", 0.6, False),
          ("crm:a1", "crm:b1", 0.97, True)]

ENTITY_LABELS = """source,record_key,entity_id
crm,a1,P1
crm,a2,P1
web,a3,P1
crm,b1,P2
crm,b2,P2
web,c1,P2
web,d1,P3
shop,zz,P9
"""
PAIR_LABELS = """Source_L,Record_Key_L,Source_R,Record_Key_R,Is_Match,note
crm,a1,crm,a2,yes,same email
crm,a2,web,a3,1,
web,a3,crm,a2,TRUE,the same pair again
crm,b2,web,c1,true,
crm,a1,crm,b1,no,
web,c1,crm,a1,0,
crm,a1,web,d1,false,anonymous record
crm,a1,shop,zz,yes,unknown record
crm,b1,crm,b2,yes,two reviewers disagree
crm,b2,crm,b1,no,
"""


@pytest.fixture(scope="module")
def resolved(spark, tmp_path_factory):
    """A lakehouse holding the identity tables `cdp eval identity` reads."""
    from pyspark.sql import functions as F

    from cdp.io import Lakehouse

    lake = Lakehouse(spark, str(tmp_path_factory.mktemp("eval") / "lakehouse"))
    records = spark.createDataFrame([(r,) for r in RECORDS], "record_id string").select(
        "record_id", F.substring_index("record_id", ":", 1).alias("source"),
        F.substring_index("record_id", ":", -1).alias("source_record_key"))
    lake.overwrite(records, IDENTITY_RECORDS)
    lake.overwrite(records.join(spark.createDataFrame(list(CUSTOMERS.items()), "record_id string, customer_id string"),
                                "record_id"), IDENTITY_MAP)
    lake.overwrite(spark.createDataFrame([(s, d, r, "", 1.0, CUSTOMERS[s]) for s, d, r in LINKS],
                                         "src string, dst string, rule string, evidence string, weight double, "
                                         "customer_id string"), IDENTITY_LINKS)
    lake.overwrite(spark.createDataFrame([(s, d, p, 0.0, v, "", "r1") for s, d, p, v in SCORES],
                                         "src string, dst string, match_probability double, match_weight double, "
                                         "vetoed boolean, evidence string, run_id string"), IDENTITY_MATCH_SCORES)
    return lake


def labels_file(tmp_path, text: str, name: str = "labels.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def at(evaluation, threshold):
    return next(r for r in evaluation.thresholds if r["threshold"] == threshold)


def scores(row) -> tuple:
    return row["precision"], row["recall"], row["f1"]


def f1(p, r):
    return 2 * p * r / (p + r)


@pytest.fixture(scope="module")
def entity_evaluation(resolved, settings, tmp_path_factory):
    from cdp.identity.report import evaluate_identity

    return evaluate_identity(resolved, settings, labels_file(tmp_path_factory.mktemp("labels"), ENTITY_LABELS),
                             (0.9, 0.9999))


def test_entity_labels_at_the_resolution_and_at_each_threshold(entity_evaluation):
    ev = entity_evaluation
    # resolution {a1 a2 a3} {b1 b2} {c1}: 3 + 1 predicted pairs, all true; P1 and P2 hold 3 + 3 true pairs
    m = ev.metrics
    assert (m["predicted_pairs"], m["true_pairs"], m["true_positive_pairs"]) == (4, 6, 4)
    assert scores(m) == pytest.approx((1.0, 4 / 6, f1(1.0, 4 / 6)))
    assert {k: v for k, v in m.items() if k.startswith("labels_")} == {
        "labels_rows": 8, "labels_not_in_identity_records": 1, "labels_anonymous": 1, "labels_conflicting": 0,
        "labels_without_entity": 0, "labels_evaluated_records": 6}
    assert ev.form == "entities" and ev.thresholds[0]["threshold"] is None   # the resolution's own row first
    assert (ev.thresholds[0]["links"], ev.thresholds[0]["customers"]) == (1, 3)
    # 0.9: a2-a3 and b2-c1 join; a1-b1 (0.97) is vetoed, so never a link, and a1-c1 (0.6) is under it:
    # {a1 a2 a3} {b1 b2 c1}, every true pair found
    row = at(ev, 0.9)
    assert (row["links"], row["customers"], row["predicted_pairs"], row["true_positive_pairs"]) == (2, 2, 6, 6)
    assert scores(row) == pytest.approx((1.0, 1.0, 1.0))
    # 0.9999: no scored pair joins: the deterministic components {a1 a2} {a3} {b1 b2} {c1}
    row = at(ev, 0.9999)
    assert (row["links"], row["customers"], row["predicted_pairs"], row["true_positive_pairs"]) == (0, 4, 2, 2)
    assert scores(row) == pytest.approx((1.0, 2 / 6, f1(1.0, 2 / 6)))
    configured = [r for r in ev.thresholds if r["threshold"] == ev.configured]
    assert len(configured) == 1 and "over-merge guards" in ev.note


def test_pair_labels_at_the_resolution_and_at_each_threshold(resolved, settings, tmp_path):
    from cdp.identity.report import evaluate_identity

    ev = evaluate_identity(resolved, settings, labels_file(tmp_path, PAIR_LABELS), (0.5, 0.9999))
    # evaluated pairs: a1a2 (match), a2a3 (match, given twice), b2c1 (match), a1b1, a1c1 (non-matches);
    # the resolution puts a1a2 and a2a3 in one customer: 2 predicted, both true, of 3 true pairs
    m = ev.metrics
    assert ev.form == "pairs"
    assert (m["predicted_pairs"], m["true_pairs"], m["true_positive_pairs"]) == (2, 3, 2)
    assert scores(m) == pytest.approx((1.0, 2 / 3, f1(1.0, 2 / 3)))
    assert {k: v for k, v in m.items() if k.startswith("labels_")} == {
        "labels_rows": 10, "labels_not_in_identity_records": 1, "labels_anonymous": 1, "labels_conflicting": 2,
        "labels_same_record": 0, "labels_evaluated_pairs": 5}
    # 0.5: a1-c1 (0.6) joins everyone: 5 labelled pairs predicted, 3 of them true
    row = at(ev, 0.5)
    assert (row["links"], row["customers"], row["predicted_pairs"], row["true_positive_pairs"]) == (3, 1, 5, 3)
    assert scores(row) == pytest.approx((3 / 5, 1.0, f1(3 / 5, 1.0)))
    # 0.9999: a2-a3 (0.999) does not join: only a1a2 predicted
    row = at(ev, 0.9999)
    assert (row["predicted_pairs"], row["true_positive_pairs"]) == (1, 1)
    assert scores(row) == pytest.approx((1.0, 1 / 3, f1(1.0, 1 / 3)))


def test_the_generators_record_owners_folder_is_an_entity_labels_file(spark, tmp_path):
    owners = tmp_path / "record_owners"
    owners.mkdir()
    (owners / "part-0.csv").write_text("source,record_key,person_id\ncrm,a1,P1\n")
    (owners / "part-1.csv").write_text("source,record_key,person_id\nweb,a3,P1\n")
    labels = load_labels(spark, str(owners))
    assert labels.form == "entities"
    assert sorted(tuple(r) for r in labels.rows.collect()) == [("crm", "a1", "P1"), ("web", "a3", "P1")]


def test_label_mistakes_are_one_line(spark, resolved, settings, tmp_path):
    from cdp.identity.report import evaluate_identity

    with pytest.raises(CdpError, match=r"is_match must be true/false, yes/no or 1/0; 1 row\(s\) say otherwise "
                                       r"\(e.g. 'maybe'\)"):
        load_labels(spark, labels_file(tmp_path, "source_l,record_key_l,source_r,record_key_r,is_match\n"
                                                 "crm,a1,crm,a2,maybe\ncrm,a1,web,a3,no\n"))
    with pytest.raises(CdpError, match="not found"):
        check_labels(str(tmp_path / "nowhere.csv"))
    unknown = labels_file(tmp_path, "source,record_key,entity_id\nshop,zz,P1\nshop,zy,P1\n", "unknown.csv")
    with pytest.raises(CdpError, match=r"no record of labels file .* is in silver.identity_records \(e.g. shop zz\)"):
        evaluate_identity(resolved, settings, unknown, by_threshold=False)


def test_logged_to_mlflow_with_the_threshold_table_and_the_plot(entity_evaluation, settings, tmp_path):
    from mlflow import MlflowClient

    from cdp.identity.report import log_identity_evaluation, threshold_table
    from cdp.tracking import tracking_uri

    ev = entity_evaluation
    run = log_identity_evaluation(settings, "test", ev.metrics, ev)
    client = MlflowClient(tracking_uri(settings))
    assert {a.path for a in client.list_artifacts(run)} >= {"identity_thresholds.csv", "precision_recall.png"}
    logged = client.get_run(run).data.metrics
    assert (logged["precision_at_0.9"], logged["recall"]) == pytest.approx((1.0, 4 / 6))
    csv_text = Path(client.download_artifacts(run, "identity_thresholds.csv", str(tmp_path))).read_text()
    assert csv_text.splitlines()[0] == ("clustering,threshold,links,customers,predicted_pairs,true_pairs,"
                                        "true_positive_pairs,precision,recall,f1")
    assert threshold_table(ev).row_count == len(ev.thresholds)
