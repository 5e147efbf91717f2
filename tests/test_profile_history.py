"""gold.customer_profile_history as SCD type 2: validity ranges across two runs worked out by hand, an idempotent
re-run, a corrected re-run of the same as_of, and the profile as it was between the runs."""

from __future__ import annotations

from datetime import datetime

import pytest
from frame_asserts import assert_frame_equal

from cdp.errors import CdpError
from cdp.io import Lakehouse
from cdp.profile.history import merge_profile_history, profile_as_of, profile_changes
from cdp.quality import load_contract
from cdp.tables import CUSTOMER_PROFILE, CUSTOMER_PROFILE_HISTORY

T1, T2 = datetime(2025, 3, 1), datetime(2025, 4, 1)
PROFILE = "customer_id string, rfm_segment string, nps_category string, monetary double"
HISTORY = PROFILE + ", valid_from timestamp, valid_to timestamp, is_current boolean, run_id string"
CHANGES = PROFILE + ", change string, current_valid_from timestamp"
TRACKED = ["rfm_segment", "nps_category"]   # monetary is untracked: it moves every run

RUN_1 = [("A", "Loyal", None, 100.0),
         ("B", "Champions", None, 300.0),
         ("C", "At risk", "passive", 50.0),
         ("D", "New", "promoter", 10.0)]
RUN_2 = [("A", "Loyal", None, 100.0),              # unchanged (null nps_category both times: equal, null-safely)
         ("B", "Champions", "detractor", 320.0),   # changed on a tracked column (null -> detractor)
         ("C", "At risk", "passive", 80.0),        # changed only on the untracked monetary
         ("E", "New", None, 20.0)]                 # new; D is gone (merged into another customer)
# After run 2: B's first version closed at T2 and a new one open from T2; D's closed at T2; C keeps monetary 50.0
# (untracked columns hold the values of the run that opened the version).
AFTER_RUN_2 = [("A", "Loyal", None, 100.0, T1, None, True, "run-1"),
               ("B", "Champions", None, 300.0, T1, T2, False, "run-1"),
               ("B", "Champions", "detractor", 320.0, T2, None, True, "run-2"),
               ("C", "At risk", "passive", 50.0, T1, None, True, "run-1"),
               ("D", "New", "promoter", 10.0, T1, T2, False, "run-1"),
               ("E", "New", None, 20.0, T2, None, True, "run-2")]
# A corrected snapshot for T2 (same as_of, re-run): B's T2 version is corrected in place, E withdrawn (deleted).
RUN_2_CORRECTED = [("A", "Loyal", None, 100.0),
                   ("B", "Champions", "promoter", 330.0),
                   ("C", "At risk", "passive", 80.0)]


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    """Run 1 at T1, run 2 at T2, run 2 again (same snapshot): the actions each call staged, the history after
    each (read once, kept in memory), the table's commits (version, operation) and what each run's gate saw
    before its MERGE (the history as the MERGE would leave it)."""
    lake = Lakehouse(spark, str(tmp_path_factory.mktemp("history") / "lakehouse"))
    staged, history, gated = {}, {}, {}
    for name, rows, as_of, run_id in [("run_1", RUN_1, T1, "run-1"), ("run_2", RUN_2, T2, "run-2"),
                                      ("rerun_2", RUN_2, T2, "run-2b")]:
        staged[name] = merge_profile_history(lake, spark.createDataFrame(rows, PROFILE), TRACKED, as_of, run_id,
                                             gate=lambda df, name=name: gated.__setitem__(name, _kept(spark, df)))
        if name != "rerun_2":   # its commits say it wrote nothing
            history[name] = _kept(spark, lake.read(CUSTOMER_PROFILE_HISTORY))
    commits = [tuple(r) for r in lake.delta_table(CUSTOMER_PROFILE_HISTORY).history().select("version", "operation")
               .orderBy("version").collect()]
    return lake, staged, history, commits, gated


def _kept(spark, df):
    """df's rows as they are now (a frame of Python rows: it does not read the table again later)."""
    return spark.createDataFrame(df.collect(), df.schema)


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta
def test_the_gate_sees_before_the_merge_the_history_the_merge_leaves(runs):
    _, _, history, _, gated = runs
    assert_frame_equal(gated["run_1"], history["run_1"])
    assert_frame_equal(gated["run_2"], history["run_2"])
    assert_frame_equal(gated["rerun_2"], history["run_2"])   # nothing to write: the history as it is


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_first_run_opens_a_version_per_customer(runs):
    _, _, history, _, _ = runs
    assert_frame_equal(history["run_1"], [(*r, T1, None, True, "run-1") for r in RUN_1], HISTORY)


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_second_run_closes_changed_and_gone_versions_and_opens_changed_and_new_ones(runs):
    _, _, history, _, _ = runs
    assert_frame_equal(history["run_2"], AFTER_RUN_2, HISTORY)


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_second_run_stages_two_inserts_and_two_closes(runs):
    _, staged, _, _, _ = runs
    assert staged["run_2"] == {"insert": 2, "close": 2}   # inserts: B, E; closes: B, D


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_rerun_with_the_same_snapshot_stages_nothing(runs):
    _, staged, _, _, _ = runs
    assert staged["rerun_2"] == {}


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_each_run_is_one_commit_and_the_idempotent_rerun_none(runs):
    _, _, _, commits, _ = runs
    assert commits == [(0, "WRITE"), (1, "MERGE")]   # run 1 creates the table, run 2 is one MERGE


@pytest.mark.slow
def test_corrected_rerun_fixes_the_versions_its_as_of_opened(spark, lake):
    gated = []
    for rows, as_of, run_id in [(RUN_1, T1, "run-1"), (RUN_2, T2, "run-2"), (RUN_2_CORRECTED, T2, "run-2c")]:
        merge_profile_history(lake, spark.createDataFrame(rows, PROFILE), TRACKED, as_of, run_id,
                              gate=lambda df: gated.append(_kept(spark, df)))
    # B's T2 version corrected in place (no third version, no zero-length one), E's withdrawn; B's and D's T1
    # versions stay closed at T2.
    expected = [r for r in AFTER_RUN_2 if r[0] not in ("B", "E") or r[4] == T1]
    expected.append(("B", "Champions", "promoter", 330.0, T2, None, True, "run-2c"))
    assert_frame_equal(lake.read(CUSTOMER_PROFILE_HISTORY), expected, HISTORY)
    assert_frame_equal(gated[-1], expected, HISTORY)   # corrected in place, withdrawn: seen by the gate first


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_profile_between_the_runs_is_the_first_runs(runs):
    _, _, history, _, _ = runs
    between = profile_as_of(history["run_2"], datetime(2025, 3, 15))
    assert_frame_equal(between, [r for r in AFTER_RUN_2 if r[4] == T1], HISTORY)


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_profile_at_the_second_run_excludes_the_versions_it_closed(runs):
    _, _, history, _, _ = runs
    at = profile_as_of(history["run_2"], T2)   # valid_to is exclusive
    assert_frame_equal(at, [r for r in AFTER_RUN_2 if r[6]], HISTORY)


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_a_run_before_the_latest_change_is_refused(runs, spark):
    lake = runs[0]
    with pytest.raises(CdpError, match=r"already has versions after as_of 2025-03-15 00:00:00; runs must go forward"):
        merge_profile_history(lake, spark.createDataFrame(RUN_1, PROFILE), TRACKED, datetime(2025, 3, 15), "late")


def test_history_contract_is_the_profiles_columns_then_the_scd2_ones(settings):
    history, profile = load_contract(settings, CUSTOMER_PROFILE_HISTORY), load_contract(settings, CUSTOMER_PROFILE)
    assert history.column_names == [*profile.column_names, "valid_from", "valid_to", "is_current", "run_id"]


@pytest.mark.slow  # two runs of the SCD2 MERGE on Delta (the comparison itself: test_profile_changes)
def test_history_scd2_columns_are_the_contracts(runs, settings):
    _, _, history, _, _ = runs
    contract = load_contract(settings, CUSTOMER_PROFILE_HISTORY)
    assert [(f.name, f.dataType.simpleString()) for f in history["run_2"].schema.fields][-4:] == [
        (c.name, c.type.replace("long", "bigint")) for c in contract.columns][-4:]


# ---------------------------------------------------------------- the pure comparison, no Delta

@pytest.mark.parametrize("history, snapshot, expected", [
    ([(*r, T1, None, True, "run-1") for r in RUN_1], RUN_2,
     [("A", "Loyal", None, 100.0, "unchanged", T1),
      ("B", "Champions", "detractor", 320.0, "changed", T1),
      ("C", "At risk", "passive", 80.0, "unchanged", T1),
      ("D", None, None, None, "gone", T1),
      ("E", "New", None, 20.0, "new", None)]),
    # a corrected snapshot for T2 after run 2: the versions T2 opened are corrected or withdrawn
    (AFTER_RUN_2, RUN_2_CORRECTED,
     [("A", "Loyal", None, 100.0, "unchanged", T1),
      ("B", "Champions", "promoter", 330.0, "corrected", T2),
      ("C", "At risk", "passive", 80.0, "unchanged", T1),
      ("E", None, None, None, "withdrawn", T2)]),
], ids=["second_run", "corrected_rerun"])
def test_profile_changes(spark, history, snapshot, expected):
    changes = profile_changes(spark.createDataFrame(history, HISTORY), spark.createDataFrame(snapshot, PROFILE),
                              TRACKED, T2)
    assert_frame_equal(changes, expected, CHANGES)


def test_a_tracked_column_the_profile_lacks_is_refused(spark):
    with pytest.raises(ValueError, match="tracked column.s. segment are not profile columns"):
        profile_changes(spark.createDataFrame([], HISTORY), spark.createDataFrame([], PROFILE), ["segment"], T1)


@pytest.mark.slow
def test_a_gate_that_refuses_leaves_the_history_unwritten(spark, lake):
    merge_profile_history(lake, spark.createDataFrame(RUN_1, PROFILE), TRACKED, T1, "run-1")
    version = lake.version(CUSTOMER_PROFILE_HISTORY)

    def refuse(df):
        raise CdpError("gold.customer_profile_history failed its contract")

    with pytest.raises(CdpError, match="failed its contract"):
        merge_profile_history(lake, spark.createDataFrame(RUN_2, PROFILE), TRACKED, T2, "run-2", gate=refuse)
    assert lake.version(CUSTOMER_PROFILE_HISTORY) == version
