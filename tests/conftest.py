"""One session-scoped SparkSession (Delta configured, 1 shuffle partition, UI off) and the suite's own copy of
the project's configuration, so nothing a user adds under conf/ or data/ changes a test's outcome."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cdp.config import DEFAULT_CONF_DIR, PROJECT_ROOT, load_settings

# the salt of the PII hashes (cdp.privacy.pii, the erasure log): a test-only value; subprocesses inherit it
os.environ.setdefault("CDP_PII_SALT", "tests-only-salt-0123456789abcdef")


def suite_conf(source: Path, dest: Path) -> Path:
    """A copy of the configuration folder `source` at `dest` holding only the sources the demo generator
    produces (a user's own source files, e.g. the README's point-of-sale example, are left out)."""
    from cdp.synth import SOURCES

    shutil.copytree(source, dest)
    for f in (dest / "sources").glob("*.yaml"):
        if f.stem not in SOURCES:
            f.unlink()
    return dest


def test_overrides(workdir: Path) -> list[str]:
    """The `--set key=value` overrides test_settings applies (before its own): every path under workdir, small
    local Spark, MLflow in the workdir. A subprocess (`cdp run`, spark-submit) gets the same settings from them."""
    return [
        f"paths.landing={workdir}/landing",
        f"paths.ground_truth={workdir}/ground_truth",
        f"paths.lakehouse={workdir}/lakehouse",
        f"paths.checkpoints={workdir}/checkpoints",
        f"paths.reports={workdir}/reports",
        f"mlflow.tracking_uri={workdir}/mlflow.db",
        f"mlflow.artifact_root={workdir}/mlruns",
        f"spark.ivy_dir={PROJECT_ROOT / '.ivy2'}",     # the project's JAR cache: no resolution, no network
        "spark.master=local[2]",
        "spark.conf.spark.sql.shuffle.partitions=1",
        "spark.conf.spark.default.parallelism=1",
        "spark.conf.spark.ui.enabled=false",
        # tiny data: interpreting expressions beats compiling code for every new query shape (same results)
        "spark.conf.spark.sql.codegen.wholeStage=false",
        "spark.conf.spark.sql.codegen.factoryMode=NO_CODEGEN",
        "spark.conf.spark.databricks.delta.snapshotPartitions=1",
        "spark.conf.spark.databricks.delta.stats.collect=false",
        "spark.conf.spark.locality.wait=0",
        "spark.conf.spark.driver.memory=4g",   # the session lives through the whole suite (939 tests)
        "spark.conf.spark.sql.adaptive.enabled=false",
        "spark.log_level=ERROR",
        *os.environ.get("CDP_TEST_SET", "").split(),   # e.g. CDP_TEST_SET="spark.master=local[1]" to experiment
    ]


def test_settings(conf_dir: Path, workdir: Path, *overrides: str):
    """Settings for tests: every path under workdir, small local Spark, MLflow in the workdir."""
    return load_settings("local", [*test_overrides(workdir), *overrides], conf_dir)


test_overrides.__test__ = False  # helpers, not tests
test_settings.__test__ = False


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cdp")


@pytest.fixture(scope="session")
def conf_dir(workdir) -> Path:
    return suite_conf(DEFAULT_CONF_DIR, workdir / "conf")


@pytest.fixture(scope="session")
def settings(conf_dir, workdir):
    return test_settings(conf_dir, workdir)


@pytest.fixture(scope="session")
def spark(settings):
    from cdp.spark import build_spark

    session = build_spark(settings, app_name="cdp-tests")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _clean_spark(request):
    """Between tests that use Spark: no cached frame or temp view carries over."""
    yield
    if "spark" in request.fixturenames:
        session = request.getfixturevalue("spark")
        session.catalog.clearCache()
        for view in session.sql("SHOW VIEWS").collect():   # (catalog.listTables needs generated code)
            if view.isTemporary:
                session.catalog.dropTempView(view.viewName)


@pytest.fixture()
def lake(spark, tmp_path):
    """A fresh, empty lakehouse per test (tables under tmp_path)."""
    from cdp.io import Lakehouse

    return Lakehouse(spark, str(tmp_path / "lakehouse"))


DEMO_CATALOG = "cdp_pipeline_gold"


@pytest.fixture(scope="session")
def pipeline_demo(spark, conf_dir, tmp_path_factory):
    """The whole pipeline run once on 60 generated customers (slow tests share it): (settings, lake, run context).

    Landing files under <root>/landing, the lakehouse under <root>/lakehouse, MLflow in <root>/mlflow.db; the
    publish step registers the gold tables in the catalog database DEMO_CATALOG (dropped at the end)."""
    from rich.console import Console

    from cdp.io import Lakehouse
    from cdp.pipeline import run_pipeline
    from cdp.synth import generate

    root = tmp_path_factory.mktemp("pipeline")
    generate(60, 13, root / "landing", root / "ground_truth")
    settings = test_settings(conf_dir, root, f"catalog.database={DEMO_CATALOG}")
    ctx = run_pipeline(settings, spark, console=Console(width=140, record=True))   # ctx.console.export_text(clear=False)
    before = _files(root, DEMO_WATCHED)
    yield settings, Lakehouse.from_settings(spark, settings), ctx
    spark.sql(f"DROP DATABASE IF EXISTS {DEMO_CATALOG} CASCADE")   # external tables: the Delta data stays
    changed = sorted(set(before.items()) ^ set(_files(root, DEMO_WATCHED).items()))
    assert not changed, ("pipeline_demo is read-only (a test that writes takes demo_copy); written by a test: "
                         + ", ".join(sorted({f for f, _ in changed})[:10]))


DEMO_WATCHED = ("landing", "lakehouse", "reports", "mlflow.db")


def _files(root: Path, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under root/<name> (or root/<name> itself)."""
    found = {}
    for name in names:
        top = root / name
        for f in ([top] if top.is_file() else top.rglob("*") if top.is_dir() else []):
            if f.is_file():
                st = f.stat()
                found[str(f.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture()
def demo_copy(pipeline_demo, conf_dir, spark, tmp_path):
    """The demo pipeline's landing files, lakehouse, reports and MLflow store copied to tmp_path, for a test that
    writes: (settings pointing at the copy, its lakehouse, the demo's run context). No catalog database (the demo's
    names point at the demo's tables); the copy's MLflow runs keep their artifacts where the demo logged them."""
    from cdp.io import Lakehouse

    demo_settings, _, ctx = pipeline_demo
    demo = Path(demo_settings.path(demo_settings.paths.lakehouse)).parent
    for folder in ("lakehouse", "mlruns", "landing", "ground_truth", "reports"):
        if (demo / folder).is_dir():
            shutil.copytree(demo / folder, tmp_path / folder, ignore=shutil.ignore_patterns("_cdp_lock.json"))
    shutil.copy(demo / "mlflow.db", tmp_path / "mlflow.db")
    settings = test_settings(conf_dir, tmp_path)
    return settings, Lakehouse.from_settings(spark, settings), ctx
