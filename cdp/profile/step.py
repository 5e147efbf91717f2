"""The profile and segment steps, the writers: touchpoints + gold.customers -> gold.customer_profile (Customer 360),
its SCD2 history, the KPI marts; then the segments of conf/segments.yaml over the profile.

Each core is pure (cdp.profile.profile, history, kpis, segments); here the frames are gated on their contracts
and written: the profile and the marts overwritten whole, the history MERGEd (SCD type 2), the segment membership
replaced for the run. Re-running with the same input leaves the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.journeys import JourneyConfig, checked_journey_config
from cdp.config.profile import ProfileConfig, load_profile_config
from cdp.config.segments import load_segments, segments_path
from cdp.frames import cache_columns, uncache
from cdp.io import Lakehouse
from cdp.journey.touchpoints import customer_touchpoints
from cdp.profile.history import merge_profile_history
from cdp.profile.kpis import kpi_marts
from cdp.profile.profile import customer_profile, resolve_as_of
from cdp.profile.segments import check_segment_conditions, segment_membership
from cdp.quality import load_contract, record_quality, validate
from cdp.quality.gold import gate_tables
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


def build_profiles(lake: Lakehouse, settings: Settings, sources, run_id: str, now: datetime,
                   touchpoints: DataFrame | None = None) -> ProfileResult:
    """gold.customer_profile, its history and the KPI marts: read, build, gate, write (after the journeys step,
    whose gold.incomplete_purchases the profile counts). touchpoints: the journeys step's of the same run (the
    same frame, not built twice); None reads them from silver.interactions and gold.identity_map."""
    journey_config = checked_journey_config(settings, sources)
    config = load_profile_config(settings)
    own = touchpoints is None
    if own:
        touchpoints = customer_touchpoints(lake.read(INTERACTIONS), lake.read(IDENTITY_MAP)).transform(cache_columns)
    try:
        return _profile_tables(lake, settings, touchpoints, journey_config, config, run_id, now)
    finally:
        if own:
            uncache(touchpoints)


def _profile_tables(lake: Lakehouse, settings: Settings, touchpoints: DataFrame, journey_config: JourneyConfig,
                    config: ProfileConfig, run_id: str, now: datetime) -> ProfileResult:
    """build_profiles' work on touchpoints: the profile and KPI marts gated and written, the history MERGEd."""
    as_of = resolve_as_of(touchpoints, config, now)
    profile = customer_profile(touchpoints, lake.read(CUSTOMERS), lake.read(INCOMPLETE_PURCHASES), journey_config,
                               config, as_of)
    frames = {CUSTOMER_PROFILE: profile, **kpi_marts(touchpoints, journey_config)}
    gated = gate_tables(lake, settings, frames, run_id, "profiles")
    try:
        for table, frame in gated.items():
            lake.overwrite(frame, table)
        result = ProfileResult(customers=gated[CUSTOMER_PROFILE].count(), as_of=as_of)
        result.history = merge_profile_history(lake, gated[CUSTOMER_PROFILE], config.history.tracked_columns,
                                               as_of, run_id)
    finally:
        uncache(*gated.values())
    # the history is MERGEd, not overwritten: its verdicts are taken on the table as written
    history = lake.read(CUSTOMER_PROFILE_HISTORY)
    report = validate(history, load_contract(settings, CUSTOMER_PROFILE_HISTORY), run_id, samples_on_failure=True)
    record_quality(lake, report)
    report.raise_for_critical()
    return result


def build_segments(lake: Lakehouse, settings: Settings, run_id: str, now: datetime) -> dict[str, int]:
    """gold.segments (membership) and gold.segment_sizes for this run, from conf/segments.yaml over the profile."""
    config = load_segments(settings)
    profile = lake.read(CUSTOMER_PROFILE)
    check_segment_conditions(profile, config, segments_path(settings))
    membership, sizes = segment_membership(profile, config, run_id, now)
    gated = gate_tables(lake, settings, {SEGMENTS: membership, SEGMENT_SIZES: sizes}, run_id, "segments")
    for table, frame in gated.items():
        if lake.exists(table):
            lake.replace_where(frame, table, f"run_id = '{run_id}'")
        else:
            lake.overwrite(frame, table)
    uncache(*gated.values())
    return {r.segment: r.customers for r in lake.read(SEGMENT_SIZES).where(F.col("run_id") == run_id).collect()}
