"""Identity step reporting: the resolution summary and the evaluation against labels (the generator's ground truth
or a user's own), with precision and recall by match-probability threshold, logged to MLflow."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyspark.sql import functions as F
from rich.table import Table

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.io import Lakehouse
from cdp.tables import IDENTITY_LINKS, IDENTITY_MAP, IDENTITY_MATCH_SCORES, IDENTITY_RECORDS

EXPERIMENT = "cdp-identity"
MODEL_EXPERIMENT = "cdp-identity-model"


def resolution_table(res) -> Table:
    t = Table(title=f"identity resolution {res.run_id}: {res.mode} ({res.reason})" if res.reason
              else f"identity resolution {res.run_id}", title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    m = res.matching
    rows = [("identity records", res.records), ("  anonymous (no identifying attribute, no customer id)", res.anonymous),
            *([("  changed since the last run (new, changed, deleted, or a value of theirs became junk)",
                res.dirty_records), ("  re-resolved: the match groups and blocks they reach", res.region_records)]
              if res.mode == "incremental" else []),
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


# the match-probability thresholds `cdp eval identity` reports, with the configured one (probabilistic.threshold)
DEFAULT_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999)
BEFORE_GUARDS = ("a threshold's clustering: the deterministic links kept plus every non-vetoed Splink pair at or above it "
                 "(gold.identity_match_scores), before the over-merge guards; the first row is the resolution itself "
                 "(gold.identity_map, after them)")


@dataclass(frozen=True)
class IdentityEvaluation:
    """The resolution against a labels file, and what each match-probability threshold would have given."""

    labels: str                  # the labels file (or the generator's record_owners folder)
    form: str                    # "entities" | "pairs"
    metrics: dict                # gold.identity_map against the labels, label coverage (labels_*), evidence ceiling
    thresholds: list[dict] = field(default_factory=list)   # the resolution's row, then one per threshold
    configured: float | None = None
    note: str = ""               # how the threshold rows are made, or why there are none


def evaluate_identity(lake: Lakehouse, conf: ProjectConfig | Settings, labels_path: str | None = None,
                      thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS, by_threshold: bool = True) -> IdentityEvaluation:
    """gold.identity_map against labels (default: the generator's ground truth, with the evidence ceiling), and
    precision and recall at each match-probability threshold when gold.identity_match_scores is there."""
    from cdp.identity.attributes import with_custom_attributes
    from cdp.identity.evaluate import (
        evidence_ceiling,
        label_metrics,
        load_labels,
        match_labels,
        pairwise_metrics,
    )
    from cdp.identity.junk import mark_junk

    conf = ProjectConfig.of(conf)
    settings, config = conf.settings, conf.identity
    records, id_map = lake.read(IDENTITY_RECORDS), lake.read(IDENTITY_MAP)
    truth = labels_path is None
    path = labels_path or f"{settings.path(settings.paths.ground_truth).rstrip('/')}/record_owners"
    labelled = match_labels(load_labels(lake.spark, path), records, id_map)
    assignments = id_map.select("record_id", F.col("customer_id").alias("cluster"))
    metrics = label_metrics(assignments, labelled)
    if truth and labelled.form == "entities":
        # what the evidence in the records allows at best (evaluate.evidence_ceiling), over the same records
        clean = mark_junk(records.transform(with_custom_attributes(config)), config)[0].join(
            assignments.select("record_id"), "record_id")
        ceiling = pairwise_metrics(evidence_ceiling(clean, labelled.truth, config, settings.graph), labelled.truth)
        metrics |= {"evidence_ceiling_recall": ceiling["recall"], "evidence_ceiling_f1": ceiling["f1"],
                    "recall_of_ceiling": metrics["recall"] / ceiling["recall"] if ceiling["recall"] else 1.0}
    metrics |= {f"labels_{k}": v for k, v in labelled.coverage.items()}
    evaluation = IdentityEvaluation(path, labelled.form, metrics)
    if not by_threshold:
        return evaluation
    if config.matching is None:
        return replace(evaluation, note="probabilistic matching is off (conf/identity.yaml): no threshold to choose")
    if not lake.exists(IDENTITY_MATCH_SCORES):
        return replace(evaluation, note=f"no {IDENTITY_MATCH_SCORES} yet (`cdp run --steps identity` writes it): "
                                        "no precision and recall by threshold")
    configured = config.matching.threshold
    return replace(evaluation, configured=configured,
                   **_by_threshold(lake, settings, labelled, metrics, sorted({*thresholds, configured}),
                                   min(config.matching.scores_floor, configured)))


def _by_threshold(lake: Lakehouse, settings: Settings, labelled, metrics: dict, thresholds: list[float],
                  floor: float) -> dict:
    from cdp.config.identity import PROBABILISTIC_RULE
    from cdp.identity.evaluate import threshold_metrics

    below = [t for t in thresholds if t < floor]
    thresholds = [t for t in thresholds if t not in below]
    links, id_map = lake.read(IDENTITY_LINKS), lake.read(IDENTITY_MAP)
    rows = threshold_metrics(labelled, id_map.select("record_id"), links, lake.read(IDENTITY_MATCH_SCORES),
                             thresholds, settings.graph) if thresholds else []
    resolution = {"threshold": None, "links": links.where(F.col("rule") == PROBABILISTIC_RULE).count(),
                  "customers": id_map.select("customer_id").distinct().count(),
                  **{k: metrics[k] for k in ("predicted_pairs", "true_pairs", "true_positive_pairs",
                                             "precision", "recall", "f1")}}
    note = BEFORE_GUARDS + (f"; not shown: {', '.join(f'{t:g}' for t in below)}, under the scores floor "
                            f"{floor:g} (pairs below it are not kept)" if below else "")
    return {"thresholds": [resolution, *rows], "note": note}


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


def log_identity_evaluation(conf: ProjectConfig | Settings, run_id: str, metrics: dict,
                            evaluation: IdentityEvaluation | None = None) -> str:
    """One MLflow run: the metrics; with an evaluation, also each threshold's precision, recall and F1, the
    threshold table (identity_thresholds.csv) and the precision-recall plot (precision_recall.png)."""
    from cdp.tracking import log_evaluation, tracking_uri

    conf = ProjectConfig.of(conf)
    settings, config = conf.settings, conf.identity
    params = {
        "rules": ",".join(r.name for r in config.deterministic_rules if r.enabled),
        "max_cluster_size": config.max_cluster_size,
        "max_records_per_value": config.junk.max_records_per_value,
        "pipeline_run_id": run_id,
    }
    artifacts = {}
    if evaluation is not None:
        params |= {"labels": evaluation.labels, "labels_form": evaluation.form,
                   "probabilistic_threshold": evaluation.configured}
        metrics = {**metrics, **{f"{k}_at_{row['threshold']:g}": row[k] for row in evaluation.thresholds[1:]
                                 for k in ("precision", "recall", "f1")}}
        if evaluation.thresholds:
            artifacts["identity_thresholds.csv"] = thresholds_csv(evaluation)
    mlflow_run = log_evaluation(settings, EXPERIMENT, f"identity-eval-{run_id}", params, metrics, artifacts)
    if evaluation is not None and evaluation.thresholds:
        import matplotlib.pyplot as plt
        from mlflow import MlflowClient

        fig = precision_recall_figure(evaluation)
        try:
            MlflowClient(tracking_uri(settings)).log_figure(mlflow_run, fig, "precision_recall.png")
        finally:
            plt.close(fig)
    return mlflow_run


def _clustering(row: dict, configured: float | None) -> str:
    if row["threshold"] is None:
        return "resolution"
    return f"{row['threshold']:g}" + (" (configured)" if row["threshold"] == configured else "")


def thresholds_csv(evaluation: IdentityEvaluation) -> str:
    """The threshold table as CSV: clustering (resolution or the threshold), then the counts and scores."""
    out = io.StringIO()
    cols = ["threshold", "links", "customers", "predicted_pairs", "true_pairs", "true_positive_pairs",
            "precision", "recall", "f1"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["clustering", *cols])
    for row in evaluation.thresholds:
        writer.writerow(["resolution" if row["threshold"] is None else "threshold",
                         *["" if row[c] is None else row[c] for c in cols]])
    return out.getvalue()


def precision_recall_figure(evaluation: IdentityEvaluation):
    """Precision against recall, one point per threshold (labelled), the resolution as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resolution, *rows = evaluation.thresholds
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([r["recall"] for r in rows], [r["precision"] for r in rows], marker="o", label="threshold (before the guards)")
    points: dict[tuple, list[str]] = {}   # thresholds giving the same clustering share one label
    for r in rows:
        points.setdefault((r["recall"], r["precision"]), []).append(_clustering(r, evaluation.configured))
    for xy, names in points.items():
        ax.annotate(", ".join(names), xy, fontsize=7, textcoords="offset points", xytext=(4, 4))
    ax.plot([resolution["recall"]], [resolution["precision"]], marker="*", markersize=12, linestyle="none",
            color="tab:red", label="resolution (gold.identity_map)")
    ax.set(xlabel="recall", ylabel="precision", title=f"pairwise precision and recall by threshold ({evaluation.form[:-1]} labels)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def evaluation_table(metrics: dict, mlflow_run: str | None, against: str = "ground truth") -> Table:
    t = Table(title=f"identity evaluation against {against}", title_justify="left",
              caption=f"MLflow run {mlflow_run}" if mlflow_run else None, caption_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        t.add_row(k, f"{v:.4f}" if isinstance(v, float) else f"{v:,}")
    return t


def threshold_table(evaluation: IdentityEvaluation) -> Table:
    """Precision, recall and F1 of the resolution and at each match-probability threshold."""
    t = Table(title="pairwise precision and recall by match-probability threshold", title_justify="left",
              caption=evaluation.note, caption_justify="left")
    for name in ("clustering", "probabilistic links", "customers", "predicted pairs", "true pairs",
                 "true-positive pairs", "precision", "recall", "F1"):
        t.add_column(name, justify="left" if name == "clustering" else "right")
    for row in evaluation.thresholds:
        t.add_row(_clustering(row, evaluation.configured), *[f"{row[k]:,}" for k in (
            "links", "customers", "predicted_pairs", "true_pairs", "true_positive_pairs")],
            *[f"{row[k]:.4f}" for k in ("precision", "recall", "f1")])
    return t
