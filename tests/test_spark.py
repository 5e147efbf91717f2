import os
import subprocess
import sys

import pytest

from cdp.errors import EnvironmentProblem
from cdp.spark import check_java, ivy_cached


def fake_java(tmp_path, version: str):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    java = bindir / "java"
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2020-01-01\' >&2\n')
    java.chmod(0o755)
    return str(bindir)


def test_missing_java_is_one_actionable_line(tmp_path):
    with pytest.raises(EnvironmentProblem) as err:
        check_java({"PATH": str(tmp_path)})
    assert "no 'java' on PATH" in str(err.value) and "openjdk-17" in str(err.value)


def test_old_java_is_rejected(tmp_path):
    with pytest.raises(EnvironmentProblem, match="Java 11 found, but Spark 4 needs Java 17"):
        check_java({"PATH": fake_java(tmp_path, "11.0.2")})
    (tmp_path / "x").mkdir()
    assert check_java({"PATH": fake_java(tmp_path / "x", "17.0.9")}) == 17


def test_cli_without_java_prints_one_line_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java here; python is called by absolute path
    proc = subprocess.run([sys.executable, "-m", "cdp", "run", "--steps", "bronze"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Java 17+ is required"), proc.stderr


def test_session_has_delta_and_checkpoint_dir(spark, settings):
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "1"
    assert "/checkpoints/" in spark.sparkContext.getCheckpointDir()
    assert ivy_cached(settings.path(settings.spark.ivy_dir), "io.delta:delta-spark_4.1_2.13:4.4.0")
