"""The churn model through real Spark ML and a real MLflow tracking store and registry: the champion/challenger
rule on the same held-out rows, scoring from models:/<name>@champion, the error when there is no champion, and
`make mlflow-ui` seen in a real (headless) browser: the run, its plots and the model with its aliases."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.config import PROJECT_ROOT
from cdp.config.churn import CATEGORICAL, FEATURES, load_churn_config
from cdp.ml.registry import CHALLENGER, CHAMPION, NoChampion, churner_weight, load_champion, log_and_register
from cdp.ml.scoring import churn_scores
from cdp.ml.train import train_churn_models

pytestmark = pytest.mark.slow

DATES = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]
PER_SNAPSHOT = 150


@pytest.fixture(scope="module")
def features(spark):
    """Customer snapshots whose churn follows inactivity and complaints (plus noise); every other feature is noise."""
    snapshot = F.element_at(F.array(*[F.lit(d) for d in DATES]), (F.col("id") / PER_SNAPSHOT).cast("int") + 1)
    cols = {f: (F.rand(seed=i) * 100) for i, f in enumerate(FEATURES) if f not in CATEGORICAL}
    cols["complaints_90d"] = F.floor(F.rand(seed=101) * 3)
    cols["gender"] = F.when(F.rand(seed=102) < 0.5, "F").otherwise("M")
    cols["country"] = F.when(F.rand(seed=103) < 0.7, "ES").otherwise("GB")
    frame = spark.range(PER_SNAPSHOT * len(DATES)).select(
        F.concat(F.lit("C"), (F.col("id") % PER_SNAPSHOT).cast("string")).alias("customer_id"),
        snapshot.alias("snapshot_date"), *[cols[f].alias(f) for f in FEATURES])
    signal = F.col("days_since_last_activity") / 50 + F.col("complaints_90d") + F.randn(seed=104) * 0.4
    return frame.withColumn("churned", (signal > 2.2).cast("int")).cache()


@pytest.fixture(scope="module")
def base_config(settings):
    config = load_churn_config(settings)
    model = config.model.model_copy(update={
        "name": f"test_churn_{uuid.uuid4().hex[:8]}",
        "grid": config.model.grid.model_copy(update={"max_depth": [2], "max_iter": [8], "reg_param": [0.01]}),
    })
    return config.model_copy(update={"model": model,
                                     "snapshots": config.snapshots.model_copy(update={"held_out": 1})})


def with_features(config, names: list[str]):
    return config.model_copy(update={"features": names})


@pytest.fixture(scope="module")
def registered(settings, features, base_config):
    """Two trainings in one registry: a model on the real signal, then one on noise alone."""
    good = with_features(base_config, ["days_since_last_activity", "complaints_90d", "age", "gender"])
    first = train_churn_models(features, DATES, good)
    reg1 = log_and_register(settings, good, first, "test-1")
    weak = with_features(base_config, ["age", "tenure_days"])
    reg2 = log_and_register(settings, weak, train_churn_models(features, DATES, weak), "test-2")
    again = log_and_register(settings, good, train_churn_models(features, DATES, good), "test-3")
    return good, first, reg1, reg2, again


def test_champion_only_when_better(registered):
    from mlflow import MlflowClient

    good, _, reg1, reg2, again = registered
    assert (reg1.alias, reg1.champion_metric) == (CHAMPION, None)
    # noise alone, judged on the same held-out rows as the champion: it cannot beat it
    assert reg2.alias == CHALLENGER and reg2.metric < reg2.champion_metric
    assert reg2.champion_metric == pytest.approx(reg1.metric)
    # the same model retrained on the same data does not beat it by the margin: a re-run keeps the champion
    assert again.alias == CHALLENGER and again.metric == pytest.approx(reg1.metric)
    client = MlflowClient()
    name = good.model.name
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == reg1.version
    assert str(client.get_model_version_by_alias(name, CHALLENGER).version) == again.version   # the latest
    artifacts = {a.path for a in client.list_artifacts(reg1.run_id, "evaluation")}
    assert {f"evaluation/{n}" for n in ("roc_curve.png", "pr_curve.png", "calibration.png",
                                       "feature_importance.png", "features.json")} <= artifacts
    run = client.get_run(reg1.run_id)
    assert run.data.metrics["best_roc_auc"] > run.data.metrics["recency_baseline_roc_auc"]


def test_scoring_from_the_champion_alias(settings, features, registered):
    good, first, reg1, _, _ = registered
    model, version = load_champion(settings, good)
    assert str(version.version) == reg1.version
    unlabelled = features.where(F.col("snapshot_date") == DATES[-1]).drop("churned")
    candidates = version.tags["driver_candidates"].split(",")
    assert candidates[0] in ("days_since_last_activity", "complaints_90d")
    assert churner_weight(version) == pytest.approx(first.churner_weight)
    scores = churn_scores(model, unlabelled, good.scoring, good.model.name, version.version, candidates, DATES[-1],
                          churner_weight(version))
    rows = scores.collect()
    assert len(rows) == PER_SNAPSHOT and {r.model_version for r in rows} == {reg1.version}
    riskiest = max(rows, key=lambda r: r.churn_probability)
    assert riskiest.risk_band == good.scoring.risk_bands[0].name
    assert any(("complaints" in d or "last active" in d) for d in riskiest.top_drivers), riskiest.top_drivers


def _browser() -> str:
    found = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if found is None:
        pytest.skip("no Chromium on this machine (.ci/run installs it: apt-get install chromium)")
    return found


def rendered(url: str, tmp_path: Path) -> str:
    """The page's DOM after headless Chromium ran its scripts (the MLflow UI is a single-page app)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=20000", "--dump-dom"]
    return subprocess.run([_browser(), *flags, url], capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.process
def test_make_mlflow_ui_shows_the_run_its_plots_and_the_aliased_model(settings, registered, tmp_path):
    from mlflow import MlflowClient

    _browser()
    good, _, reg1, reg2, _ = registered
    port = _free_port()
    server = subprocess.Popen(["make", "-s", "mlflow-ui", f"MLFLOW_DB={settings.path(settings.mlflow.tracking_uri)}",
                               f"MLFLOW_PORT={port}"], cwd=PROJECT_ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(base)
        models = rendered(f"{base}/#/models/{good.model.name}", tmp_path)
        assert "@" in models and "champion" in models and "challenger" in models
        assert f"Version {reg1.version}" in models and f"Version {reg2.version}" in models
        experiment = MlflowClient().get_run(reg1.run_id).info.experiment_id
        plot = rendered(f"{base}/#/experiments/{experiment}/runs/{reg1.run_id}/artifacts/evaluation/roc_curve.png",
                        tmp_path)
        assert "test-1" in plot and "roc_curve.png" in plot and "feature_importance.png" in plot
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_scoring_without_a_champion_says_how_to_train_one(settings, base_config):
    config = base_config.model_copy(update={"model": base_config.model.model_copy(update={"name": "never_trained"})})
    with pytest.raises(NoChampion, match=r"^no 'champion' model named never_trained .*: train one with "
                                         r"`cdp run --steps churn_features,churn_model`"):
        load_champion(settings, config)
