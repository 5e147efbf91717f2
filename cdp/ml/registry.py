"""The churn model in MLflow: one tracked run per training (parameters, held-out metrics against the baselines,
ROC/PR/calibration/importance plots, the feature list), the Spark model logged with a signature and an input
example, registered, and aliased `champion` only when it beats the current champion on the same held-out rows
(`challenger` otherwise). Current MLflow APIs only: aliases, never stages."""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cdp.config import Settings
from cdp.config.churn import ChurnConfig
from cdp.errors import CdpError
from cdp.ml.evaluate import Evaluation, evaluate_score
from cdp.ml.train import TrainingResult, feature_importances, score_frame
from cdp.tracking import tracking_uri, use_tracking

CHAMPION, CHALLENGER = "champion", "challenger"
DRIVERS_TAG = "driver_candidates"     # model version tag: the features tried as a customer's drivers
FEATURES_TAG = "features"
WEIGHT_TAG = "churner_weight"         # the class weight the model was trained with (its odds are corrected by it)


class NoChampion(CdpError):
    """Scoring asked for models:/<name>@champion before any model was trained and aliased."""


@dataclass(frozen=True)
class Registration:
    run_id: str
    version: str
    alias: str                        # champion | challenger
    metric: float                     # the new model's compare_on figure on the held-out rows
    champion_metric: float | None     # the previous champion's, on the same rows (None: there was none)
    reason: str


def model_uri(config: ChurnConfig, alias: str = CHAMPION) -> str:
    return f"models:/{config.model.name}@{alias}"


def champion_version(settings: Settings, config: ChurnConfig):
    """The ModelVersion holding the champion alias, or None when there is none yet."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    use_tracking(settings, config.model.experiment)
    try:
        return MlflowClient().get_model_version_by_alias(config.model.name, CHAMPION)
    except MlflowException:
        return None


def load_champion(settings: Settings, config: ChurnConfig):
    """(PipelineModel, ModelVersion) of models:/<name>@champion; NoChampion (one line, what to do) otherwise."""
    import mlflow.spark

    version = champion_version(settings, config)
    if version is None:
        raise NoChampion(f"no '{CHAMPION}' model named {config.model.name} in the MLflow registry at "
                         f"{tracking_uri(settings)}: train one with `cdp run --steps churn_features,churn_model` "
                         "(or a whole `cdp run`)")
    return mlflow.spark.load_model(model_uri(config), dfs_tmpdir=tempfile.mkdtemp(dir=_load_dir())), version


def _load_dir() -> str:
    """A temporary folder for the models this process loads, removed when it exits (Spark reads parts of a
    loaded model, such as the imputer's medians, only when it first transforms)."""
    global _LOAD_DIR
    if _LOAD_DIR is None:
        _LOAD_DIR = tempfile.mkdtemp(prefix="cdp-mlflow-")
        atexit.register(shutil.rmtree, _LOAD_DIR, True)
    return _LOAD_DIR


_LOAD_DIR: str | None = None


def churner_weight(version) -> float:
    """The class weight a registered version was trained with (1.0 for a version without the tag)."""
    return float(version.tags.get(WEIGHT_TAG, "1.0"))


def _plots(result: TrainingResult, importances: dict[str, float], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result.best.evaluation
    for name, points, xlabel, ylabel in (("roc_curve", best.roc, "false positive rate", "true positive rate"),
                                         ("pr_curve", best.pr, "recall", "precision")):
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([p[0] for p in points], [p[1] for p in points], label=result.best.kind)
        if name == "roc_curve":
            ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
        else:
            ax.axhline(best.base_rate, linestyle=":", color="grey", label="base rate")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{name.replace('_', ' ')} (held-out snapshots)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=90)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    ax.plot([c[0] for c in best.calibration], [c[1] for c in best.calibration], marker="o", label=result.best.kind)
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", title="calibration")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "calibration.png", dpi=90)
    plt.close(fig)
    top = list(importances.items())[:20][::-1]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set(xlabel="share of importance", title=f"feature importance ({result.best.kind})")
    fig.tight_layout()
    fig.savefig(folder / "feature_importance.png", dpi=90)
    plt.close(fig)


def _metrics(result: TrainingResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in result.candidates:
        out.update(c.evaluation.metrics(f"{c.kind}_"))
    out.update(result.baseline.metrics("recency_baseline_"))
    out.update({f"best_{k}": v for k, v in result.best.evaluation.metrics("").items()})
    out["best_roc_auc_over_recency"] = result.best.evaluation.roc_auc - result.baseline.roc_auc
    out.update({f"rows_{k}": float(v) for k, v in result.rows.items()})
    out["churner_weight"] = result.churner_weight
    return out


def log_and_register(settings: Settings, config: ChurnConfig, result: TrainingResult, run_name: str) -> Registration:
    """Track the training in MLflow, register the better model and give it champion or challenger."""
    import mlflow.spark
    import pyspark
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow = use_tracking(settings, config.model.experiment)
    held_out = result.split.held_out
    importances = feature_importances(result.best, held_out, result.features)
    example = held_out.select(*result.features).limit(5).toPandas()
    output = score_frame(result.best.model, held_out.limit(5), result.churner_weight).select(
        "churn_probability").toPandas()
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({
            "model_kind": result.best.kind, "features": ",".join(result.features),
            "features_without_values": ",".join(result.dropped_features) or "-",
            "train_snapshots": ",".join(map(str, result.split.train_snapshots)),
            "held_out_snapshots": ",".join(map(str, result.split.held_out_snapshots)),
            "horizon_days": config.definition.horizon_days, "active_days": config.definition.active_days,
            "compare_on": config.model.compare_on, "class_weights": config.model.class_weights,
            **{f"{c.kind}.{k}": v for c in result.candidates for k, v in c.params.items()},
        })
        mlflow.log_metrics(_metrics(result))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _plots(result, importances, folder)
            (folder / "features.json").write_text(json.dumps(
                {"features": result.features, "features_without_values": result.dropped_features,
                 "importance": importances}, indent=2))
            mlflow.log_artifacts(tmp, "evaluation")
        # MLflow prints "Successfully registered model ..." to stderr; the step reports the registration itself
        with contextlib.redirect_stderr(io.StringIO()), tempfile.TemporaryDirectory(prefix="cdp-mlflow-") as dfs:
            info = mlflow.spark.log_model(result.best.model, "model", signature=infer_signature(example, output),
                                          input_example=example, registered_model_name=config.model.name,
                                          pip_requirements=[f"pyspark=={pyspark.__version__}"], dfs_tmpdir=dfs)
        version = str(info.registered_model_version)
        client = MlflowClient()
        drivers = [f for f in importances if importances[f] > 0][:config.scoring.driver_candidates]
        client.set_model_version_tag(config.model.name, version, DRIVERS_TAG, ",".join(drivers))
        client.set_model_version_tag(config.model.name, version, FEATURES_TAG, ",".join(result.features))
        client.set_model_version_tag(config.model.name, version, WEIGHT_TAG, repr(result.churner_weight))
        registration = _promote(settings, config, result, run.info.run_id, version)
        mlflow.set_tags({"alias": registration.alias, "promotion": registration.reason})
        client.set_model_version_tag(config.model.name, version, "promotion", registration.reason)
    return registration


def _promote(settings: Settings, config: ChurnConfig, result: TrainingResult, run_id: str, version: str
             ) -> Registration:
    """champion when there is none, when the champion cannot score today's features, or when the new model's
    compare_on figure beats the champion's on the same held-out rows by min_improvement; challenger otherwise."""
    from mlflow import MlflowClient

    metric = config.model.compare_on
    new = getattr(result.best.evaluation, metric)
    current = champion_version(settings, config)
    client = MlflowClient()
    champion_metric = None
    if current is None:
        alias, reason = CHAMPION, "first model: no champion yet"
    else:
        try:
            model, champion = load_champion(settings, config)
            old: Evaluation = evaluate_score(score_frame(model, result.split.held_out, churner_weight(champion)),
                                             "churn_probability")
            champion_metric = getattr(old, metric)
        except Exception as exc:   # the champion was trained on features that no longer exist
            reason = f"the champion (version {current.version}) cannot score the current features: {type(exc).__name__}"
            alias = CHAMPION
        else:
            better = new > champion_metric + config.model.min_improvement
            alias = CHAMPION if better else CHALLENGER
            reason = (f"{metric} {new:.4f} vs the champion's (version {current.version}) {champion_metric:.4f} "
                      f"on the same held-out rows: {'better' if better else 'not better'} by the "
                      f"{config.model.min_improvement:g} margin")
    client.set_registered_model_alias(config.model.name, alias, version)
    return Registration(run_id, version, alias, new, champion_metric, reason)
