"""Source definitions are checked when they load, without Spark: every mistake is one line naming the file,
the dotted key, what is wrong and what to do. No test here uses the `spark` fixture."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from examples import readme_pos_source
from pydantic import model_validator

from cdp.config import DEFAULT_CONF_DIR, PROJECT_ROOT, KeyProblem, Strict, load_settings, load_yaml_model
from cdp.config.checks import (
    landing_path_problem,
    reader_option_problem,
    timestamp_format_problem,
    timezone_problem,
)
from cdp.config.sources import DETAIL_COLUMNS, SOURCE_HINT, SourceSpec, load_source, load_sources
from cdp.errors import ConfigError

POS = readme_pos_source()


def broken(old: str, new: str) -> str:
    assert old in POS, f"the README example no longer contains {old!r}"
    return POS.replace(old, new, 1)


# id -> (YAML text with one mistake, the exact dotted key, a fragment of what to do)
CASES = {
    "timezone_typo": (broken("timezone: Europe/Madrid", "timezone: Europe/Madird"), "timezone", "did you mean"),
    "timezone_short_offset": (broken("timezone: Europe/Madrid", 'timezone: "+02"'), "timezone", "+02:00"),
    "timezone_unquoted_offset": (broken("timezone: Europe/Madrid", "timezone: +10:00"), "timezone", "quote it"),
    "pattern_week_year": (broken('"dd/MM/yyyy HH:mm:ss"', '"dd/MM/YYYY HH:mm:ss"'), "timestamp_format", "use 'y'"),
    "pattern_unknown_letter": (broken('"dd/MM/yyyy HH:mm:ss"', '"dd/MM/yyyy HH:mm:ss n"'), "timestamp_format",
                               "sql-ref-datetime-pattern"),
    "pattern_day_of_year": (broken('"dd/MM/yyyy HH:mm:ss"', '"DD/MM/yyyy HH:mm:ss"'), "timestamp_format", "use 'd'"),
    "event_time_undeclared": (broken("event_time: sold_at", "event_time: sold_on"),
                              "silver.interaction.event_time", "did you mean 'sold_at'"),
    "event_type_column_undeclared": (broken("event_type: {value: store_purchase}", "event_type: {column: status}"),
                                     "silver.interaction.event_type.column", "declare it under columns"),
    "interaction_field_undeclared": (broken("fields: {amount: total, currency: currency}",
                                            "fields: {amount: total, currency: currency, product_id: sku}"),
                                     "silver.interaction.fields.product_id", "declare it under columns"),
    "observed_at_undeclared": (broken("observed_at: sold_at", "observed_at: ticket_time"),
                               "silver.identity.observed_at", "declare it under columns"),
    "identity_field_undeclared": (broken("fields: {phone: customer_phone,", "fields: {phone: customer_phon,"),
                                  "silver.identity.fields.phone", "did you mean 'customer_phone'"),
    "handle_undeclared": (broken("fields: {phone: customer_phone, full_name: customer_name}",
                                 "fields: {phone: customer_phone}\n    handle_by_platform: {handle: user, platform: store_code}"),
                          "silver.identity.handle_by_platform.handle", "declare it under columns"),
    "event_time_not_a_timestamp": (broken("event_time: sold_at", "event_time: store_code"),
                                   "silver.interaction.event_time", "type: timestamp"),
    "amount_not_a_number": (broken("fields: {amount: total,", "fields: {amount: store_code,"),
                            "silver.interaction.fields.amount", "type: int or long or double"),
    "birth_date_not_a_date": (broken("full_name: customer_name}", "full_name: customer_name, birth_date: store_code}"),
                              "silver.identity.fields.birth_date", "type: date"),
    "event_type_column_and_value": (broken("event_type: {value: store_purchase}",
                                           "event_type: {value: store_purchase, column: store_code}"),
                                    "silver.interaction.event_type", "give exactly one"),
    "unknown_mapping_field": (broken("fields: {amount: total,", "fields: {amout: total,"),
                              "silver.interaction.fields.amout", "did you mean 'amount'"),
    "record_key_undeclared": (broken("record_key: ticket_id", "record_key: ticket"), "record_key",
                              "did you mean 'ticket_id'"),
    "column_twice": (broken("- {name: customer_name, type: string}",
                            "- {name: customer_name, type: string}\n  - {name: total, type: string}"),
                     "columns.7.name", "remove or rename one"),
    "column_type_unknown": (broken("{name: total, type: double}", "{name: total, type: float}"), "columns.3.type",
                            "did you mean 'double'"),
    "csv_option_unknown": (broken('sep: ";"}', 'separator: ";"}'), "options.separator", "did you mean 'sep'"),
    "csv_option_reserved": (broken('sep: ";"}', 'sep: ";", columnNameOfCorruptRecord: bad}'),
                            "options.columnNameOfCorruptRecord", "remove it"),
    "csv_option_not_text": (broken('{header: "true",', "{header: true,"), "options.header", "quote it"),
    "path_absolute": (broken("path: pos/sales_*.csv", "path: /data/landing/pos/sales_*.csv"), "path",
                      "relative to paths.landing"),
    "path_parent": (broken("path: pos/sales_*.csv", "path: ../pos/sales_*.csv"), "path", "relative to paths.landing"),
    "unknown_top_level_key": (broken("timezone: Europe/Madrid", "timezone: Europe/Madrid\ntime_zone: UTC"), "time_zone",
                              "Sources: bring your own"),
    "unknown_nested_key": (broken("event_time: sold_at", "event_tme: sold_at"), "silver.interaction.event_tme",
                           "did you mean 'event_time'"),
    "missing_key": (re.sub(r"^record_key:.*\n", "", POS, flags=re.M), "record_key", "conf/sources/crm_customers.yaml"),
    "bad_name": (broken("name: pos_sales", "name: POS Sales"), "name", "lowercase letters"),
    "null_and_flag_on_record_key": (broken("{name: ticket_id, type: string, required: true}",
                                           "{name: ticket_id, type: string, required: true, on_bad_value: null_and_flag}"),
                                    "columns.0.on_bad_value", "the record key"),
    "null_and_flag_on_required": (broken("{name: sold_at, type: timestamp, required: true}",
                                         "{name: sold_at, type: timestamp, required: true, on_bad_value: null_and_flag}"),
                                  "columns.1.on_bad_value", "set quarantine_row"),
    "on_bad_value_unknown": (broken("{name: total, type: double}", "{name: total, type: double, on_bad_value: drop}"),
                             "columns.3.on_bad_value", "null_and_flag"),
}


def load_error(tmp_path: Path, text: str) -> tuple[str, Path]:
    path = tmp_path / "pos_sales.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_source(path)
    return str(err.value), path


@pytest.mark.parametrize(("text", "key", "hint"), CASES.values(), ids=CASES.keys())
def test_a_mistake_is_one_line_naming_file_key_and_fix(tmp_path, text, key, hint):
    message, path = load_error(tmp_path, text)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(rf"\bkey '{re.escape(key)}'", message), message
    assert hint in message


def test_the_readme_example_loads(tmp_path):
    path = tmp_path / "pos_sales.yaml"
    path.write_text(POS, encoding="utf-8")
    spec = load_source(path)
    assert spec.name == "pos_sales"
    assert spec.timezone == "Europe/Madrid"
    assert spec.problems() == []


@pytest.mark.parametrize("path", sorted((DEFAULT_CONF_DIR / "sources").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_source_loads(path):
    spec = load_source(path)
    assert spec.name == path.stem


def test_load_sources_reads_the_shipped_folder():
    specs = load_sources(load_settings("local"))
    assert [s.name for s in specs] == sorted(p.stem for p in (DEFAULT_CONF_DIR / "sources").glob("*.yaml"))


def test_a_time_zone_typo_suggests_the_right_name(tmp_path):
    message, _ = load_error(tmp_path, broken("timezone: Europe/Madrid", "timezone: Europe/Madird"))
    assert "did you mean 'Europe/Madrid'?" in message


def test_on_bad_value_defaults_to_quarantine_row_for_the_record_key_and_required_columns(tmp_path):
    path = tmp_path / "pos_sales.yaml"
    path.write_text(broken("{name: currency, type: string}", "{name: currency, type: string, on_bad_value: quarantine_row}"),
                    encoding="utf-8")
    spec = load_source(path)
    assert {c.name: c.bad_value_action(spec.record_key) for c in spec.columns} == {
        "ticket_id": "quarantine_row", "sold_at": "quarantine_row", "store_code": "null_and_flag",
        "total": "null_and_flag", "currency": "quarantine_row", "customer_phone": "null_and_flag",
        "customer_name": "null_and_flag"}


def test_the_record_key_needs_no_required_flag_to_refuse_null_and_flag(tmp_path):
    text = broken("{name: ticket_id, type: string, required: true}", "{name: ticket_id, on_bad_value: null_and_flag}")
    message, path = load_error(tmp_path, text)
    assert message == (f"{path}: key 'columns.0.on_bad_value' is null_and_flag on 'ticket_id', the record key, which "
                       "a row cannot go on without; remove the key (its default is quarantine_row) or set quarantine_row")


def test_no_mapping_or_list_is_printed(tmp_path):
    message, _ = load_error(tmp_path, POS.split("columns:")[0] + "columns: {ticket_id: string}\n")
    assert "{'ticket_id'" not in message


def test_long_values_are_shortened(tmp_path):
    message, _ = load_error(tmp_path, broken("timezone: Europe/Madrid", "timezone: Europe/" + "x" * 500))
    assert len(message) < len(str(tmp_path)) + 300


def test_a_key_given_twice_is_a_mistake(tmp_path):
    message, _ = load_error(tmp_path, broken("channel: store", "channel: store\nchannel: shop"))
    assert "key 'channel' is given twice" in message


def test_two_files_with_one_name(tmp_path):
    conf = tmp_path / "conf"
    (conf / "sources").mkdir(parents=True)
    for f in ("base.yaml", "local.yaml"):
        (conf / f).write_text((DEFAULT_CONF_DIR / f).read_text())
    (conf / "sources" / "a.yaml").write_text(POS)
    (conf / "sources" / "b.yaml").write_text(POS)
    with pytest.raises(ConfigError, match=r"b\.yaml: key 'name' 'pos_sales' is already the name of .*a\.yaml"):
        load_sources(load_settings("local", [], conf))


def test_source_hint_names_the_readme_section():
    assert "README.md, section 'Sources: bring your own'" in SOURCE_HINT


# ---------------------------------------------------------------- the single checks


@pytest.mark.parametrize("tz", ["UTC", "Z", "+02:00", "-05:30", "+18:00", "Europe/Madrid", "America/New_York",
                                "Etc/GMT+5", "EST5EDT", "GMT", "Asia/Kolkata"])
def test_time_zones_spark_reads(tz):
    assert timezone_problem(tz) is None


# "+02" and "+0200" parse as ISO offsets but give NULL through a pattern's VV; EST and Factory are in
# tzdata but java.time does not read them; zone names are case-sensitive in Spark's casts.
@pytest.mark.parametrize("tz", ["+02", "+0200", "+19:00", "+02:60", "EST", "Factory", "Europe/Madird",
                                "europe/madrid", "Mars/Olympus", ""])
def test_time_zones_rejected(tz):
    assert timezone_problem(tz) is not None


# Each accepted by Spark 4.1's try_to_timestamp (checked against a local session when this was written).
@pytest.mark.parametrize("fmt", ["iso", "yyyy-MM-dd HH:mm:ss", "dd/MM/yyyy HH:mm", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                                 "yyyyMMddHHmmss", "yyyy-MM-dd[ HH:mm:ss]", "MMM d, yyyy h:mm a", "d.M.yy H:mm",
                                 "yyyy-MM-dd HH:mm:ss VV", "yyyy-MM-dd HH:mm:ss.SSSSSSSSS Z", "'at' yyyy-DDD HH:mm",
                                 "yyyy-MM-dd '' HH:mm", "dd/MM/yyyy HH:mm:ss O", "dd MMMM yyyy HH:mm z"])
def test_timestamp_patterns_spark_parses(fmt):
    assert timestamp_format_problem(fmt) is None


# Each raises in Spark 4.1 (or, for the last three, parses every row to NULL or to the wrong time).
@pytest.mark.parametrize("fmt", ["YYYY-MM-dd", "yyyy-ww", "yyyy-MM-W", "yyyy-MM-dd u", "e", "c", "A", "n", "N", "B",
                                 "p", "yyyy-MM-dd g", "yyyy-MM-dd v", "EEE yyyy-MM-dd", "yyyy-MM-dd F", "yyyy Q", "q",
                                 "ddd", "HHH", "yyyyyyy", "aa", "V", "VVV", "OO", "XXXXXX", "SSSSSSSSSS", "MMMMM",
                                 "GGGGG", "yyyy-MM-dd] HH", "yyyy-MM-dd 'T HH", "yyyy{MM}", "yyyy#MM", "",
                                 "yyyy-MM-DD", "dd/mm/yyyy", "yyyy-MM-dd hh:mm"])
def test_timestamp_patterns_rejected(fmt):
    assert timestamp_format_problem(fmt) is not None


@pytest.mark.parametrize(("fmt", "key", "value"), [
    ("csv", "sep", ";"), ("csv", "sep", "\t"), ("csv", "header", "true"), ("csv", "quote", ""),
    ("csv", "encoding", "ISO-8859-1"), ("csv", "multiLine", "true"), ("csv", "maxColumns", "4096"),
    ("csv", "unescapedQuoteHandling", "STOP_AT_DELIMITER"), ("csv", "nullValue", "NULL"),
])
def test_reader_options_applied(fmt, key, value):
    assert reader_option_problem(fmt, key, value) is None


@pytest.mark.parametrize(("fmt", "key", "value"), [
    ("csv", "header", "false"), ("csv", "sep", ";;"), ("csv", "sep", "\\t"), ("csv", "delimiter", ";"),
    ("csv", "mode", "FAILFAST"), ("csv", "timestampFormat", "dd/MM/yyyy"), ("csv", "inferSchema", "true"),
    ("csv", "maxColumns", "many"), ("csv", "multiLine", "yes"), ("csv", "unescapedQuoteHandling", "stop"),
    ("csv", "pathGlobFilter", "*.csv"), ("json", "multiLine", "true"), ("parquet", "mergeSchema", "true"),
])
def test_reader_options_rejected(fmt, key, value):
    assert reader_option_problem(fmt, key, value) is not None


@pytest.mark.parametrize("path", ["", "/data/x.csv", "C:\\data\\x.csv", "s3a://bucket/x.csv", "pos/../x.csv", "pos/"])
def test_landing_paths_rejected(path):
    assert landing_path_problem(path) is not None


def test_detail_columns_match_the_silver_projection():
    from cdp.silver.canonical import ORDER_COLUMNS, ORDER_LINE_COLUMNS  # imports pyspark, starts no session

    expected = {"orders": tuple(ORDER_COLUMNS), "order_lines": tuple(ORDER_LINE_COLUMNS)}
    assert expected == DETAIL_COLUMNS


def test_mapped_columns_are_keyed_by_where_they_appear(tmp_path):
    path = tmp_path / "pos_sales.yaml"
    path.write_text(POS, encoding="utf-8")
    spec = load_source(path)
    assert isinstance(spec, SourceSpec)
    assert ("silver.identity.fields.full_name", "customer_name") in spec.mapped_column_keys()


def test_loading_sources_needs_no_spark():
    code = ("import sys; from cdp.config import load_settings; from cdp.config.sources import load_sources; "
            "load_sources(load_settings('local')); print('pyspark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- settings checked at load


def test_unknown_phone_region_is_a_settings_error():
    with pytest.raises(ConfigError, match=r"key 'silver.default_phone_region' has a bad value 'XX': not a phone region"):
        load_settings("local", ["silver.default_phone_region=XX"])


def test_settings_unknown_key_still_points_at_base_yaml():
    with pytest.raises(ConfigError, match=r"unknown key 'ingest.sources_dri'; did you mean 'sources_dir'\?.*conf/base.yaml"):
        load_settings("local", ["ingest.sources_dri=x"])


# ---------------------------------------------------------------- errors raised by model validators


class _Window(Strict):
    start: int
    end: int

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.end < self.start:
            raise KeyProblem("end", "is before start; swap them")
        return self


class _Plan(Strict):
    window: _Window
    labels: dict[str, str] = {}

    @model_validator(mode="after")
    def _labelled(self) -> _Plan:
        if not self.labels:
            raise ValueError("needs at least one label; add labels: {a: b}")
        return self


def test_a_model_validator_can_name_its_key(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("window: {start: 5, end: 1}\nlabels: {a: b}\n")
    with pytest.raises(ConfigError, match=r"plan\.yaml: key 'window\.end' is before start; swap them$"):
        load_yaml_model(path, _Plan)


def test_a_root_validator_error_prints_no_mapping(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("window: {start: 1, end: 5}\n")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(path, _Plan)
    assert str(err.value) == f"{path}: needs at least one label; add labels: {{a: b}}"
