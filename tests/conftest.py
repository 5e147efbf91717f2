"""One session-scoped SparkSession (Delta configured, 1 shuffle partition, UI off) over a temp lakehouse."""

from __future__ import annotations

import pytest

from cdp.config import load_settings


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cdp")


@pytest.fixture(scope="session")
def settings(workdir):
    return load_settings(
        "local",
        [
            f"paths.landing={workdir}/landing",
            f"paths.ground_truth={workdir}/ground_truth",
            f"paths.lakehouse={workdir}/lakehouse",
            f"paths.checkpoints={workdir}/checkpoints",
            f"paths.reports={workdir}/reports",
            "spark.master=local[2]",
            "spark.conf.spark.sql.shuffle.partitions=1",
            "spark.conf.spark.default.parallelism=2",
            "spark.conf.spark.ui.enabled=false",
            "spark.conf.spark.driver.memory=2g",
            "spark.conf.spark.sql.adaptive.enabled=false",
            "spark.log_level=ERROR",
        ],
    )


@pytest.fixture(scope="session")
def spark(settings):
    from cdp.spark import build_spark

    session = build_spark(settings, app_name="cdp-tests")
    yield session
    session.stop()


@pytest.fixture()
def lake(spark, tmp_path):
    """A fresh, empty lakehouse per test (tables under tmp_path)."""
    from cdp.io import Lakehouse

    spark.catalog.clearCache()
    return Lakehouse(spark, str(tmp_path / "lakehouse"))
