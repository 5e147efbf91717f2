import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.config import load_settings
from cdp.errors import EnvironmentProblem
from cdp.jvm_log import jvm_output_to, start_failure_cause
from cdp.spark import (
    IVY_SETTINGS,
    MANIFEST,
    check_java,
    ivy_cached,
    ivy_settings_xml,
    jar_config,
    read_manifest,
    splink_jar,
    wanted_packages,
)


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
    assert "no 'java' on PATH" in str(err.value)
    assert "openjdk-17" in str(err.value)


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
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: Java 17+ is required"), proc.stderr


def test_session_has_delta_and_checkpoint_dir(spark, settings):
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "1"
    assert "/checkpoints/" in spark.sparkContext.getCheckpointDir()
    assert ivy_cached(settings.path(settings.spark.ivy_dir), "io.delta:delta-spark_4.1_2.13:4.4.0")


# --- quiet start, offline classpath, checkpoint clean-up ---------------------------------------------------
# A JVM is started once per process, so these run in a child process that starts quietly, resolves Delta
# through Ivy (from the project's cache, via a throwaway Ivy dir that links to it), records the manifest,
# uses Delta and a reliable checkpoint, and stops with stop_spark. What the next start would do is checked
# with jar_config, without a second JVM.

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys
from cdp.config import load_settings
from cdp.errors import EnvironmentProblem
from cdp.jvm_log import jvm_output_to, start_failure_cause
from cdp.spark import build_spark, stop_spark

log, table, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
settings = load_settings("local", overrides)
try:
    spark = build_spark(settings, app_name="cdp-child", jvm_log=log)
except EnvironmentProblem as exc:
    print(json.dumps({"error": str(exc), "log_path": getattr(exc, "log_path", None)}))
    sys.exit(3)
spark.range(3).write.format("delta").save(table)  # Delta's JARs are on the classpath
spark.range(3).checkpoint()  # a reliable checkpoint writes into the session's checkpoint folder
folder = spark.sparkContext.getCheckpointDir()
print(json.dumps({"checkpoint_dir": folder, "removed": stop_spark(spark)}))
"""


def _child_overrides(base: Path, ivy_dir: Path, **extra: str) -> list[str]:
    items = {
        "paths.checkpoints": str(base / "checkpoints"),
        "spark.ivy_dir": str(ivy_dir),
        "spark.master": "local[1]",
        "spark.conf.spark.ui.enabled": "false",
        "spark.conf.spark.driver.memory": "1g",
        "spark.conf.spark.sql.shuffle.partitions": "1",
        **extra,
    }
    return [f"{k}={v}" for k, v in items.items()]


def _run_child(base: Path, name: str, overrides: list[str]) -> dict:
    log = base / f"{name}.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(log), str(base / name / "table"), *overrides],
                          capture_output=True, text=True, env=env, timeout=300, cwd=base)
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    return {"rc": proc.returncode, "stderr": proc.stderr, "log": log.read_text() if log.exists() else "", **result}


@pytest.fixture(scope="module")
def child_ivy(settings, tmp_path_factory):
    """A fresh Ivy dir (no manifest) whose cache and jars/ are the project's: resolution needs no network."""
    base = tmp_path_factory.mktemp("child")
    project_ivy = Path(settings.path(settings.spark.ivy_dir))
    ivy = base / "ivy"
    ivy.mkdir()
    for sub in ("cache", "jars"):
        (ivy / sub).symlink_to(project_ivy / sub, target_is_directory=True)
    return base, ivy


@pytest.fixture(scope="module")
def child_settings(child_ivy):
    base, ivy = child_ivy
    return load_settings("local", _child_overrides(base, ivy))


@pytest.fixture(scope="module")
def resolving_start(child_ivy):
    base, ivy = child_ivy
    return _run_child(base, "resolving", _child_overrides(base, ivy))


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_quiet_start_succeeds(resolving_start):
    assert resolving_start["rc"] == 0, resolving_start["stderr"] + resolving_start["log"][-3000:]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_quiet_start_prints_no_ivy_report(resolving_start):
    assert ":: resolving dependencies" not in resolving_start["stderr"]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_quiet_start_prints_nothing_about_ivy(resolving_start):
    assert "ivy" not in resolving_start["stderr"].lower(), resolving_start["stderr"]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_quiet_start_prints_no_warn_lines(resolving_start):
    assert not [line for line in resolving_start["stderr"].splitlines() if " WARN " in line]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_jvm_output_goes_to_the_log_file(resolving_start):
    assert ":: resolving dependencies" in resolving_start["log"]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_resolution_uses_our_ivy_settings_file(child_ivy, resolving_start):
    assert f":: loading settings :: file = {child_ivy[1] / IVY_SETTINGS}" in resolving_start["log"]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_resolving_start_records_the_coordinates(child_settings, child_ivy, resolving_start):
    manifest = json.loads((child_ivy[1] / MANIFEST).read_text())
    assert sorted(manifest["packages"]) == sorted(wanted_packages(child_settings))


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_recorded_jars_exist(child_ivy, resolving_start):
    manifest = json.loads((child_ivy[1] / MANIFEST).read_text())
    assert [j for j in manifest["jars"] if not Path(j).is_file()] == []


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_recorded_jars_include_delta(child_ivy, resolving_start):
    manifest = json.loads((child_ivy[1] / MANIFEST).read_text())
    assert any(Path(j).name.startswith("io.delta_delta-spark_") for j in manifest["jars"])


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_manifest_makes_the_next_start_skip_resolution(child_settings, resolving_start):
    assert "spark.jars.packages" not in jar_config(child_settings)


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_manifest_start_lists_the_recorded_jars(child_settings, resolving_start):
    jars = jar_config(child_settings)["spark.jars"].split(",")
    assert jars == [*read_manifest(child_settings), splink_jar()]


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_stop_spark_reports_the_checkpoint_folder(resolving_start):
    assert resolving_start["removed"] == resolving_start["checkpoint_dir"].removeprefix("file:")


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_stop_spark_removes_the_checkpoint_folder(resolving_start):
    assert not Path(resolving_start["checkpoint_dir"].removeprefix("file:")).exists()


@pytest.mark.process
@pytest.mark.slow  # a child JVM resolving Delta through Ivy
def test_stop_spark_keeps_the_checkpoint_root(resolving_start):
    assert Path(resolving_start["checkpoint_dir"].removeprefix("file:")).parent.is_dir()


@pytest.fixture(scope="module")
def failed_start(child_ivy):
    base, ivy = child_ivy  # a heap size the JVM cannot parse: it exits before the gateway comes up
    return _run_child(base, "failed", _child_overrides(base, ivy, **{"spark.conf.spark.driver.memory": "lots"}))


def test_failed_start_raises_environment_problem(failed_start):
    assert failed_start["rc"] == 3, failed_start


def test_failed_start_error_names_the_log(failed_start, child_ivy):
    assert str(child_ivy[0] / "failed.log") in failed_start["error"]


def test_failed_start_keeps_the_jvm_output(failed_start):
    assert "Could not create the Java Virtual Machine" in failed_start["log"]


def test_failed_start_prints_nothing(failed_start):
    assert failed_start["stderr"] == ""


def test_stale_manifest_falls_back_to_resolution(tmp_path):
    stale = load_settings("local", [f"spark.ivy_dir={tmp_path}"])
    jar = tmp_path / "jars" / "x.jar"
    jar.parent.mkdir()
    jar.write_bytes(b"")
    (tmp_path / MANIFEST).write_text(json.dumps({"packages": ["io.delta:delta-spark_4.0_2.13:3.3.0"], "jars": [str(jar)]}))
    assert jar_config(stale)["spark.jars.packages"] == ",".join(wanted_packages(stale))


def test_manifest_with_a_missing_jar_is_stale(tmp_path):
    stale = load_settings("local", [f"spark.ivy_dir={tmp_path}"])
    (tmp_path / MANIFEST).write_text(json.dumps({"packages": wanted_packages(stale), "jars": [str(tmp_path / "gone.jar")]}))
    assert read_manifest(stale) is None


def test_resolution_is_configured_with_our_ivy_settings(tmp_path):
    conf = jar_config(load_settings("local", [f"spark.ivy_dir={tmp_path}"]))
    assert conf["spark.jars.ivySettings"] == str(tmp_path / IVY_SETTINGS)


def test_ivy_settings_have_no_spark_packages_resolver(tmp_path):
    assert "spark-packages.org" not in ivy_settings_xml(str(tmp_path))


def test_ivy_settings_resolve_from_maven_central(tmp_path, monkeypatch):
    monkeypatch.delenv("DEFAULT_ARTIFACT_REPOSITORY", raising=False)
    assert 'root="https://repo1.maven.org/maven2/"' in ivy_settings_xml(str(tmp_path))


def test_provided_packages_add_no_jars():
    assert jar_config(load_settings("local", ["spark.packages=provided"])) == {}


def _redirected_child(tmp_path, capfd):
    with jvm_output_to(tmp_path / "jvm.log"):
        child = subprocess.Popen(["sh", "-c", "sleep 0.3; echo from-child; echo from-child-err >&2"])
    print("from-python", flush=True)
    child.wait()
    return (tmp_path / "jvm.log").read_text(), capfd.readouterr()


def test_redirect_leaves_a_child_process_writing_to_the_log(tmp_path, capfd):
    log, _ = _redirected_child(tmp_path, capfd)
    assert log == "from-child\nfrom-child-err\n"


def test_redirect_gives_python_its_output_back(tmp_path, capfd):
    _, seen = _redirected_child(tmp_path, capfd)
    assert (seen.out, seen.err) == ("from-python\n", "")


def test_failure_cause_quotes_the_unresolved_dependency_and_the_network(tmp_path):
    log = tmp_path / "jvm.log"
    log.write_text("\tHost repo.example not found. url=https://repo.example/x.pom\n"
                   'Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: a#b;1: not found]\n')
    assert start_failure_cause(log) == "unresolved dependency: a#b;1: not found; Host repo.example not found"
