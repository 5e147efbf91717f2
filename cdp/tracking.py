"""MLflow tracking: the embedded default is a local SQLite store next to the project (`make mlflow-ui`)."""

from __future__ import annotations

from pathlib import Path

from cdp.config import Settings


def tracking_uri(settings: Settings) -> str:
    """A URI as given ('http://...', 'databricks', 'databricks://profile'); a plain path is a local SQLite store."""
    store = settings.mlflow.tracking_uri
    return store if "://" in store or store == "databricks" else f"sqlite:///{settings.path(store)}"


def use_tracking(settings: Settings, experiment: str):
    """Point MLflow at the configured store and experiment (created with a project-local artifact root)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(settings))
    if mlflow.get_experiment_by_name(experiment) is None and tracking_uri(settings).startswith("databricks"):
        mlflow.create_experiment(experiment)   # the workspace keeps the artifacts
    elif mlflow.get_experiment_by_name(experiment) is None:
        artifacts = settings.path(settings.mlflow.artifact_root)
        if "://" not in artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            artifacts = Path(artifacts).as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return mlflow


def log_evaluation(settings: Settings, experiment: str, run_name: str, params: dict, metrics: dict,
                   artifacts: dict[str, str] | None = None) -> str:
    """One MLflow run with these params, metrics and text artifacts (file name -> content); returns its run id."""
    mlflow = use_tracking(settings, experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for name, text in (artifacts or {}).items():
            mlflow.log_text(text, name)
        return run.info.run_id
