"""The `cdp` command as a user meets it, in subprocesses: configuration mistakes are one line before any JVM
starts, other failures one line pointing at a log file, help that explains itself. No test here starts Spark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import suite_conf, test_settings
from examples import readme_pos_source

from cdp import __version__
from cdp.config import DEFAULT_CONF_DIR
from cdp.config.sources import load_sources


def cdp(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cdp", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def no_java(tmp_path: Path) -> dict:
    """An environment whose PATH has no java: a command that started Spark would fail on Java, not on config."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)
    return env


@pytest.fixture()
def project(tmp_path) -> Path:
    """A copy of the suite's configuration with every path under tmp_path."""
    conf = suite_conf(DEFAULT_CONF_DIR, tmp_path / "conf")
    (conf / "local.yaml").write_text((conf / "local.yaml").read_text() + f"""
paths:
  landing: {tmp_path}/landing
  ground_truth: {tmp_path}/truth
  lakehouse: {tmp_path}/lakehouse
  checkpoints: {tmp_path}/checkpoints
  reports: {tmp_path}/reports
""")
    return conf


def test_a_users_own_source_does_not_reach_the_suite(tmp_path):
    project_conf = tmp_path / "project" / "conf"
    shutil.copytree(DEFAULT_CONF_DIR, project_conf)
    (project_conf / "sources" / "pos_sales.yaml").write_text(readme_pos_source(), encoding="utf-8")
    with_pos = suite_conf(project_conf, tmp_path / "suite_with_pos")
    pristine = suite_conf(DEFAULT_CONF_DIR, tmp_path / "suite_pristine")
    names = [[s.name for s in load_sources(test_settings(c, tmp_path))] for c in (with_pos, pristine)]
    assert names[0] == names[1]


def test_the_suites_paths_are_its_own(tmp_path, settings, workdir):
    paths = settings.paths.model_dump()
    assert {k: settings.path(v).startswith(str(workdir)) for k, v in paths.items()} == {k: True for k in paths}


BROKEN = {
    "time_zone": ("sources/crm_customers.yaml", "timezone: UTC", "timezone: Europe/Madird",
                  "key 'timezone' 'Europe/Madird' is not a known time zone; did you mean 'Europe/Madrid'?"),
    "identity_rule": ("identity.yaml", "attributes: [email]", "attributes: [national_id]",
                      "attribute 'national_id' is not a column of silver.identity_records"),
    "contract": ("tables/gold/customers.yaml", "type: unique", "type: uniq", "has a bad value 'uniq'"),
    "setting": ("local.yaml", "spark:\n  master:", "spark:\n  mastr:", "unknown key 'spark.mastr'"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_configuration_mistake_is_one_line_before_spark_starts(project, tmp_path, case):
    file, old, new, message = BROKEN[case]
    path = project / file
    text = path.read_text()
    assert old in text, f"{file} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))
    proc = cdp("run", "--conf-dir", str(project), env=no_java(tmp_path))
    assert (proc.returncode, proc.stderr.count("\n"), proc.stderr.startswith("error: ")) == (2, 1, True), proc.stderr
    assert message in proc.stderr
    assert str(path) in proc.stderr


def test_check_validates_without_spark(project, tmp_path):
    proc = cdp("check", "--conf-dir", str(project), env=no_java(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if " ok: " not in line] == []


def test_an_unexpected_failure_is_one_line_and_a_logged_traceback(project, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    proc = cdp("generate", "--conf-dir", str(project), "--customers", "5", "--out", str(blocked / "out"))
    logs = sorted((tmp_path / "lakehouse" / "_logs").glob("*-generate.log"))
    assert (proc.returncode, proc.stderr.count("\n"), len(logs)) == (1, 1, 1), proc.stderr
    assert f"full traceback and Spark's output in {logs[0]}" in proc.stderr
    assert "Traceback (most recent call last)" in logs[0].read_text()


def test_a_failing_query_is_one_line_and_its_spark_context_goes_to_the_log(project, tmp_path):
    """PySpark logs a failing query's context as a JSON record on stderr by itself: it belongs in the log file."""
    proc = cdp("sql", "--conf-dir", str(project), "SELECT nope FROM (SELECT 1 AS a)")
    logs = sorted((tmp_path / "lakehouse" / "_logs").glob("*-sql.log"))
    assert (proc.returncode, proc.stderr.count("\n"), proc.stderr.startswith("error: the query failed: ")) == \
        (2, 1, True), proc.stderr
    assert "QueryContextLogger" in logs[0].read_text()


def test_verbose_shows_the_traceback(project, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    proc = cdp("generate", "--conf-dir", str(project), "--verbose", "--customers", "5", "--out", str(blocked / "out"))
    assert "Traceback (most recent call last)" in proc.stderr


def test_run_help_lists_the_steps():
    out = cdp("run", "--help").stdout
    from cdp.pipeline import STEPS

    assert [s.name for s in STEPS if f"  {s.name}  " not in out and f"  {s.name} " not in out] == []


def test_version():
    assert cdp("--version").stdout.strip() == f"cdp {__version__}"


def test_unknown_step_is_one_line(project, tmp_path):
    proc = cdp("run", "--conf-dir", str(project), "--steps", "bronze,silvr", env=no_java(tmp_path))
    assert (proc.returncode, proc.stderr.strip()) == (2, "error: unknown step(s) silvr; steps are: " + ", ".join(
        s.name for s in __import__("cdp.pipeline", fromlist=["STEPS"]).STEPS))


def test_a_wrong_labels_header_is_one_line_before_spark_starts(project, tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("record,customer\ncrm:a1,C1\n", encoding="utf-8")
    proc = cdp("eval", "identity", "--labels", str(bad), "--conf-dir", str(project), env=no_java(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: labels file {bad} has record, customer; give a CSV header naming either record pairs "
        "(source_l, record_key_l, source_r, record_key_r, is_match) or each record's entity "
        "(source, record_key, entity_id)"]


def test_the_job_entry_point_raises_what_the_command_returns(project, tmp_path):
    # a Databricks wheel task calls the function and fails only on an exception: exit code 2 must raise
    # (a process of its own: the command stops the active SparkSession when it ends)
    code = "import sys; from cdp.cli import job_main; sys.argv[0] = 'cdp-job'; job_main()"
    proc = subprocess.run([sys.executable, "-c", code, "run", "--conf-dir", str(project), "--steps", "nope"],
                          capture_output=True, text=True, env=no_java(tmp_path), timeout=120)
    assert proc.returncode == 2 and "unknown step(s) nope" in proc.stderr, proc.stderr


def test_every_command_explains_itself_with_an_example():
    import argparse

    from cdp.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert [name for name, parser in commands.items() if "example" not in parser.format_help()] == []
