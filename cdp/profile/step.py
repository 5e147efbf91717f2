"""The profile and segment steps, the writers: touchpoints + gold.customers -> gold.customer_profile (Customer 360),
its SCD2 history, the KPI marts; then the segments of conf/segments.yaml over the profile.

Each core is pure (cdp.profile.profile, history, kpis, segments); here the frames are gated on their contracts
and written: the profile and the marts overwritten whole, the history MERGEd (SCD type 2; gated as the MERGE
would leave it, before it writes), the segment membership replaced for the run. Re-running with the same input leaves the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.frames import cache_columns, uncache
from cdp.io import Lakehouse
from cdp.journey.touchpoints import customer_touchpoints
from cdp.profile.history import merge_profile_history
from cdp.profile.kpis import kpi_marts
from cdp.profile.profile import customer_profile, resolve_as_of
from cdp.profile.segments import check_segment_conditions, segment_membership
from cdp.quality.gold import gate_tables, publish, published
from cdp.tables import (
    CUSTOMER_PROFILE,
    CUSTOMER_PROFILE_HISTORY,
    CUSTOMERS,
    IDENTITY_MAP,
    INCOMPLETE_PURCHASES,
    INTERACTIONS,
    SEGMENT_SIZES,
    SEGMENTS,
)


@dataclass
class ProfileResult:
    customers: int = 0
    as_of: datetime | None = None
    history: dict[str, int] = field(default_factory=dict)   # rows staged per action of the SCD2 MERGE
    segments: dict[str, int] = field(default_factory=dict)  # segment -> customers


def build_profiles(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime,
                   touchpoints: DataFrame | None = None) -> ProfileResult:
    """gold.customer_profile, its history and the KPI marts: read, build, gate, write (after the journeys step,
    whose gold.incomplete_purchases the profile counts). touchpoints: the journeys step's of the same run (the
    same frame, not built twice); None reads them from silver.interactions and gold.identity_map."""
    conf = ProjectConfig.of(conf)
    own = touchpoints is None
    if own:
        touchpoints = customer_touchpoints(lake.read(INTERACTIONS), lake.read(IDENTITY_MAP)).transform(cache_columns)
    try:
        return _profile_tables(lake, conf, touchpoints, run_id, now)
    finally:
        if own:
            uncache(touchpoints)


def _profile_tables(lake: Lakehouse, conf: ProjectConfig, touchpoints: DataFrame, run_id: str,
                    now: datetime) -> ProfileResult:
    """build_profiles' work on touchpoints: the profile and KPI marts gated and written, the history gated and
    MERGEd."""
    config, journeys = conf.profile, conf.journeys
    as_of = resolve_as_of(touchpoints, config, now)
    profile = customer_profile(touchpoints, lake.read(CUSTOMERS), lake.read(INCOMPLETE_PURCHASES), journeys, config,
                               as_of)
    gated_history: list[DataFrame] = []

    def gate_history(history: DataFrame) -> None:
        gated = gate_tables(lake, conf, {CUSTOMER_PROFILE_HISTORY: history}, run_id, "profile_history")
        gated_history.extend(gated.values())

    with published(lake, conf, {CUSTOMER_PROFILE: profile, **kpi_marts(touchpoints, journeys)}, run_id,
                   "profiles") as written:
        result = ProfileResult(customers=written[CUSTOMER_PROFILE].count(), as_of=as_of)
        try:
            result.history = merge_profile_history(lake, written[CUSTOMER_PROFILE], config.history.tracked_columns,
                                                   as_of, run_id, gate=gate_history)
        finally:
            uncache(*gated_history)
    return result


def build_segments(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime) -> dict[str, int]:
    """gold.segments (membership) and gold.segment_sizes for this run, from conf/segments.yaml over the profile."""
    conf = ProjectConfig.of(conf)
    profile = lake.read(CUSTOMER_PROFILE)
    check_segment_conditions(profile, conf.segments, conf.segments_path)
    membership, sizes = segment_membership(profile, conf.segments, run_id, now)
    publish(lake, conf, {SEGMENTS: membership, SEGMENT_SIZES: sizes}, run_id, "segments",
            write=lambda lake, table, frame: lake.replace_where(frame, table, f"run_id = '{run_id}'"))
    return {r.segment: r.customers for r in lake.read(SEGMENT_SIZES).where(F.col("run_id") == run_id).collect()}
