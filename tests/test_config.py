import pytest

from cdp.config import load_settings, parse_override
from cdp.errors import ConfigError


def write_conf(tmp_path, base: str, local: str = "") -> str:
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "local.yaml").write_text(local)
    return str(tmp_path)


BASE = """
paths: {landing: d/l, ground_truth: d/g, lakehouse: lh, checkpoints: lh/c, reports: lh/r}
spark:
  conf: {spark.sql.shuffle.partitions: "8", spark.sql.session.timeZone: UTC}
"""


def test_overlay_and_set_merge_with_base(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark:\n  master: local[2]\n  conf: {spark.sql.shuffle.partitions: '2'}\n")
    s = load_settings("local", ["synth.customers=123", "spark.conf.spark.driver.memory=3g"], conf)
    assert s.spark.master == "local[2]"
    assert s.spark.conf == {"spark.sql.shuffle.partitions": "2", "spark.sql.session.timeZone": "UTC", "spark.driver.memory": "3g"}
    assert s.synth.customers == 123
    assert s.path(s.paths.lakehouse) == str((tmp_path.parent / "lh").resolve())
    assert s.path("s3a://bucket/lh") == "s3a://bucket/lh"


def test_unknown_key_names_key_and_file(tmp_path):
    conf = write_conf(tmp_path, BASE, "spark:\n  mastr: local[2]\n")
    with pytest.raises(ConfigError) as err:
        load_settings("local", [], conf)
    msg = str(err.value)
    assert "unknown key 'spark.mastr'" in msg
    assert msg.startswith(str(tmp_path / "local.yaml"))
    assert "\n" not in msg


def test_bad_set_value_names_the_override(tmp_path):
    conf = write_conf(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"--set synth.customers=lots: key 'synth.customers' has a bad value 'lots'"):
        load_settings("local", ["synth.customers=lots"], conf)
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("synth.customers")


def test_missing_env_file_and_missing_key(tmp_path):
    conf = write_conf(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"prod.yaml: configuration file not found"):
        load_settings("prod", [], conf)
    (tmp_path / "x").mkdir()
    conf2 = write_conf(tmp_path / "x", "spark: {}\n")
    with pytest.raises(ConfigError, match="required key 'paths' is missing"):
        load_settings("local", [], conf2)


def test_shipped_configs_are_valid():
    for env in ("local", "cluster"):
        s = load_settings(env)
        assert s.env == env
    assert load_settings("cluster").spark.packages == "provided"
