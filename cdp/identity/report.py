"""Identity step reporting: the resolution summary and the evaluation against ground truth (logged to MLflow)."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import functions as F
from rich.table import Table

from cdp.config import Settings
from cdp.io import Lakehouse
from cdp.tables import IDENTITY_MAP, IDENTITY_RECORDS

EXPERIMENT = "cdp-identity"
MODEL_EXPERIMENT = "cdp-identity-model"


def resolution_table(res) -> Table:
    t = Table(title=f"identity resolution {res.run_id}", title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    m = res.matching
    rows = [("identity records", res.records), ("  anonymous (no identifying attribute, no customer id)", res.anonymous),
            *([("records compared probabilistically", m.candidates),
               ("pairs Splink scored over the threshold (before the guards)", m.links)] if m else []),
            ("links kept after the guards (gold.identity_links)", res.edges),
            *[(f"  by {rule}", n) for rule, n in res.edges_by_rule.items()],
            ("customers", res.clusters), ("  single-record customers", res.singletons),
            ("largest customer (records)", res.largest_cluster), ("junk identifier values", res.junk_values),
            ("identifier values over the per-customer cap", res.capped_values),
            ("clusters flagged for review", res.review_clusters), ("new customer ids", res.new_customers),
            ("merges", res.merges), ("splits", res.splits)]
    for name, value in rows:
        t.add_row(name, f"{value:,}")
    for phase, secs in res.seconds.items():
        t.add_row(f"seconds: {phase}", f"{secs:,.1f}")
    return t


def has_ground_truth(settings: Settings) -> bool:
    truth = settings.path(settings.paths.ground_truth)
    return "://" in truth or (Path(truth) / "record_owners").is_dir()


def evaluate_resolution(lake: Lakehouse, settings: Settings) -> dict:
    """Pairwise precision/recall/F1 and over/under-merge counts of gold.identity_map against ground truth."""
    from cdp.identity.config import load_identity_config
    from cdp.identity.evaluate import evidence_ceiling, load_truth, pairwise_metrics, truth_for_records
    from cdp.identity.junk import mark_junk
    from cdp.spark import cut_lineage

    records = lake.read(IDENTITY_RECORDS)
    truth = truth_for_records(records, load_truth(lake.spark, settings.path(settings.paths.ground_truth))) \
        .transform(cut_lineage)
    assignments = lake.read(IDENTITY_MAP).select("record_id", F.col("customer_id").alias("cluster"))
    metrics = pairwise_metrics(assignments, truth)
    # what the evidence in the records allows at best (evaluate.evidence_ceiling), over the same records
    config = load_identity_config(settings)
    clean = mark_junk(records, config)[0].join(assignments.select("record_id"), "record_id")
    ceiling = pairwise_metrics(evidence_ceiling(clean, truth, config, settings.graph), truth)
    return {**metrics, "evidence_ceiling_recall": ceiling["recall"], "evidence_ceiling_f1": ceiling["f1"],
            "recall_of_ceiling": metrics["recall"] / ceiling["recall"] if ceiling["recall"] else 1.0}


def log_matching_model(settings: Settings, res) -> str | None:
    """The Splink model a run trained (or reused), as JSON, with its counts: one MLflow run per pipeline run."""
    from cdp.identity.probabilistic import model_json
    from cdp.tracking import log_evaluation

    m = res.matching
    if m is None:
        return None
    params = {"pipeline_run_id": res.run_id, "trained": m.trained,
              "probability_two_random_records_match": m.model.get("probability_two_random_records_match")}
    metrics = {"candidates": m.candidates, "probabilistic_links": m.links, "records": res.records}
    return log_evaluation(settings, MODEL_EXPERIMENT, f"identity-model-{res.run_id}", params, metrics,
                          artifacts={"splink_model.json": model_json(m)})


def log_identity_evaluation(settings: Settings, run_id: str, metrics: dict) -> str:
    from cdp.identity.config import load_identity_config
    from cdp.tracking import log_evaluation

    config = load_identity_config(settings)
    params = {
        "rules": ",".join(r.name for r in config.deterministic_rules if r.enabled),
        "max_cluster_size": config.max_cluster_size,
        "max_records_per_value": config.junk.max_records_per_value,
        "pipeline_run_id": run_id,
    }
    return log_evaluation(settings, EXPERIMENT, f"identity-eval-{run_id}", params, metrics)


def evaluation_table(metrics: dict, mlflow_run: str | None) -> Table:
    t = Table(title="identity evaluation against ground truth" + (f" (MLflow run {mlflow_run})" if mlflow_run else ""),
              title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        t.add_row(k, f"{v:.4f}" if isinstance(v, float) else f"{v:,}")
    return t
