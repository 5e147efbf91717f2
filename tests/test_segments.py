"""Segments as configuration: the YAML validated at load, conditions analysed by Spark against the profile's
columns (one line naming the file and the segment), membership and sizes worked out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest
import yaml
from frame_asserts import assert_frame_equal
from pyspark.sql.types import StructType

from cdp.config import DEFAULT_CONF_DIR
from cdp.config.segments import SegmentsConfig, load_segments
from cdp.errors import ConfigError
from cdp.profile.segments import check_segment_conditions, segment_membership
from cdp.quality import load_contract
from cdp.quality.gx_runner import schema_result
from cdp.tables import SEGMENT_SIZES, SEGMENTS

AT = datetime(2025, 4, 1)
# The columns of gold.customer_profile the brief lists (built in parallel; types as that step is expected to give).
PROFILE_COLUMNS = (
    "customer_id string, age_band string, gender string, city string, country string, tenure_days int, "
    "recency_days int, frequency long, monetary double, average_order_value double, r_score int, f_score int, "
    "m_score int, rfm_segment string, preferred_channel string, email_open_rate double, complaints long, "
    "csat_latest int, nps_latest int, nps_category string, sentiment_score double, marketing_consent boolean, "
    "email_unsubscribed boolean, last_interaction_ts timestamp, as_of timestamp")
SMALL_PROFILE = "customer_id string, rfm_segment string, monetary double, nps_category string, complaints long"
MEMBERSHIP = "run_id string, segment string, customer_id string, assigned_at timestamp"
SIZES = "run_id string, segment string, customers long, share_of_customers double"
SEGMENTS_YAML = [
    {"name": "big_spenders", "description": "Spent over 200", "condition": "monetary > 200"},
    {"name": "unhappy", "description": "Detractors or repeat complainers",
     "condition": "nps_category = 'detractor' OR complaints >= 2"},
    {"name": "vip", "description": "Champions", "condition": "rfm_segment = 'Champions'"},
    {"name": "nobody", "description": "No one spends that much", "condition": "monetary > 1000000"},
]


@pytest.fixture(scope="module")
def profile_schema(spark) -> StructType:
    return StructType.fromDDL(PROFILE_COLUMNS)


def write_segments(tmp_path, segments: list[dict]):
    path = tmp_path / "segments.yaml"
    path.write_text(yaml.safe_dump({"segments": segments}), encoding="utf-8")
    return path


def with_segment(index: int, **changes) -> list[dict]:
    return [{**s, **changes} if i == index else s for i, s in enumerate(SEGMENTS_YAML)]


# ---------------------------------------------------------------- the YAML, validated at load (no Spark)

@pytest.mark.parametrize("segments, message", [
    (with_segment(2, name="big_spenders"),
     r"segments.yaml: key 'segments.2.name' segment name 'big_spenders' is used twice; names must be unique$"),
    (with_segment(2, name="VIP"),
     r"segments.yaml: key 'segments.2.name' has a bad value 'VIP': .*use lowercase letters, digits and '_'"),
    (with_segment(2, condition="  "),
     r"segments.yaml: key 'segments.2.condition' has a bad value '  ': a segment needs a condition"),
    (with_segment(2, colour="red"), r"segments.yaml: unknown key 'segments.2.colour'"),
    ([{"name": "vip", "condition": "true"}], r"segments.yaml: required key 'segments.0.description' is missing"),
    ([], r"segments.yaml: key 'segments' is not valid: List should have at least 1 item"),
], ids=["duplicate_name", "name_not_snake_case", "blank_condition", "unknown_key", "missing_description",
        "no_segments"])
def test_a_bad_segments_file_is_one_line_naming_file_and_key(tmp_path, segments, message):
    with pytest.raises(ConfigError, match=message):
        load_segments(path=write_segments(tmp_path, segments))


def test_the_shipped_segments_file_loads():
    assert len(load_segments(path=DEFAULT_CONF_DIR / "segments.yaml").segments) >= 5


def test_the_shipped_conditions_fit_the_profile_columns(profile_schema):
    path = DEFAULT_CONF_DIR / "segments.yaml"
    assert check_segment_conditions(profile_schema, load_segments(path=path), path) is None


# ---------------------------------------------------------------- conditions analysed by Spark (no job)

BAD_CONDITIONS = {
    "unknown_column": ("rfm_segmnet = 'Champions'", r"\[UNRESOLVED_COLUMN\.WITH_SUGGESTION\].*`rfm_segmnet`"),
    "syntax_error": ("rfm_segment = = 'Champions'", r"\[PARSE_SYNTAX_ERROR\] Syntax error at or near '='"),
    "not_boolean": ("monetary * 2", r"\[DATATYPE_MISMATCH\.FILTER_NOT_BOOLEAN\]"),
}


@pytest.mark.parametrize("condition, spark_message", BAD_CONDITIONS.values(), ids=BAD_CONDITIONS.keys())
def test_a_bad_condition_names_file_segment_and_key(profile_schema, condition, spark_message):
    config = SegmentsConfig.model_validate({"segments": with_segment(2, condition=condition)})
    with pytest.raises(ConfigError, match=r"^conf/segments.yaml: segment 'vip' \(key 'segments.2.condition'\): "
                       + spark_message):
        check_segment_conditions(profile_schema, config, "conf/segments.yaml")


@pytest.mark.parametrize("condition", [c for c, _ in BAD_CONDITIONS.values()], ids=BAD_CONDITIONS.keys())
def test_a_bad_condition_is_one_line(profile_schema, condition):
    config = SegmentsConfig.model_validate({"segments": with_segment(2, condition=condition)})
    with pytest.raises(ConfigError) as err:
        check_segment_conditions(profile_schema, config, "conf/segments.yaml")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- membership and sizes

@pytest.fixture(scope="module")
def assigned(spark):
    profile = spark.createDataFrame([
        ("c1", "Champions", 500.0, "detractor", 0),   # big_spenders, unhappy, vip: three segments
        ("c2", "Loyal", 150.0, "promoter", 2),        # unhappy (complaints >= 2)
        ("c3", "Champions", None, None, None),        # vip; null monetary / nps / complaints: not a member there
        ("c4", "New", 50.0, "passive", 0),            # in no segment
    ], SMALL_PROFILE)
    config = SegmentsConfig.model_validate({"segments": SEGMENTS_YAML})
    return segment_membership(profile, config, "run-7", AT)


def test_membership_lists_each_customer_in_every_segment_it_meets(assigned):
    membership, _ = assigned
    assert_frame_equal(membership, [("run-7", "big_spenders", "c1", AT), ("run-7", "unhappy", "c1", AT),
                                    ("run-7", "vip", "c1", AT), ("run-7", "unhappy", "c2", AT),
                                    ("run-7", "vip", "c3", AT)], MEMBERSHIP)


def test_sizes_count_every_segment_including_empty_ones(assigned):
    _, sizes = assigned
    # 4 customers in the profile: 1/4, 2/4, 2/4, 0/4
    assert_frame_equal(sizes, [("run-7", "big_spenders", 1, 0.25), ("run-7", "unhappy", 2, 0.5),
                               ("run-7", "vip", 2, 0.5), ("run-7", "nobody", 0, 0.0)], SIZES)


@pytest.mark.parametrize("table, which", [(SEGMENTS, 0), (SEGMENT_SIZES, 1)], ids=["segments", "segment_sizes"])
def test_frames_match_their_contracts(assigned, settings, table, which):
    assert schema_result(assigned[which], load_contract(settings, table)).details == {
        "missing": [], "undeclared": [], "type_differs": []}
