"""The journeys step, the writer: silver.interactions + gold.identity_map -> gold.customer_journey and the tables
built on it (incomplete purchases, funnels, paths, attribution), gated on their contracts, then written.

The pure core is journey_tables (touchpoints and configuration in, the tables' frames out); the touchpoints and the
journey are materialised once and every table reads them; each table is overwritten whole, so re-running the step on the same input leaves the same tables. Interactions that belong to no customer
are counted per source in audit.unattributed_interactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.attribution import AttributionConfig
from cdp.config.journeys import JourneyConfig
from cdp.config.project import ProjectConfig
from cdp.frames import cache_columns, uncache
from cdp.io import Lakehouse
from cdp.journey.attribution import attribute
from cdp.journey.funnels import funnels
from cdp.journey.incomplete import incomplete_purchases
from cdp.journey.paths import journey_paths
from cdp.journey.timeline import customer_journey
from cdp.journey.touchpoints import owned, unowned, with_owner
from cdp.quality.gold import published
from cdp.tables import (
    ATTRIBUTION,
    CUSTOMER_JOURNEY,
    FUNNELS,
    IDENTITY_MAP,
    INCOMPLETE_PURCHASES,
    INTERACTIONS,
    JOURNEY_PATHS,
    UNATTRIBUTED,
    Table,
)


@dataclass
class JourneyResult:
    touchpoints: int = 0
    customers: int = 0
    unattributed: dict[tuple[str, str], int] = field(default_factory=dict)   # (source, reason) -> interactions
    removal_effects: dict[str, float] = field(default_factory=dict)         # Markov attribution, per channel
    rows: dict[str, int] = field(default_factory=dict)                      # table -> rows written
    # the materialised touchpoints, for the profiles step of the same run (it would build the same frame again)
    touchpoint_frame: DataFrame | None = field(default=None, repr=False)
    cached: list[DataFrame] = field(default_factory=list, repr=False)

    def release(self) -> None:
        """Free the cached touchpoints (the run calls it once no later step needs them)."""
        uncache(*self.cached)
        self.cached, self.touchpoint_frame = [], None


def end_of_data(touchpoints: DataFrame) -> datetime | None:
    """The latest touchpoint (one aggregate): the 'now' of journey paths, so a re-run gives the same answer."""
    return touchpoints.agg(F.max("event_ts")).first()[0]


@dataclass(frozen=True)
class JourneyTables:
    """The journey tables of a set of touchpoints (journey_tables); `journey` is materialised (cached)."""
    journey: DataFrame
    incomplete_purchases: DataFrame
    funnels: DataFrame
    attribution: DataFrame
    paths: DataFrame | None                  # None without any touchpoint (no end of data to look back from)
    removal_effects: dict[str, float]        # Markov attribution, per channel

    def frames(self) -> dict[Table, DataFrame]:
        frames = {CUSTOMER_JOURNEY: self.journey, INCOMPLETE_PURCHASES: self.incomplete_purchases,
                  FUNNELS: self.funnels, ATTRIBUTION: self.attribution}
        return frames if self.paths is None else {**frames, JOURNEY_PATHS: self.paths}


def journey_tables(touchpoints: DataFrame, config: JourneyConfig, attribution: AttributionConfig,
                   end: datetime | None) -> JourneyTables:
    """The pure core of the step: touchpoints -> every journey table (the journey itself materialised once), and
    the Markov removal effects per channel. `end`: the latest touchpoint (end_of_data), the paths' 'now'."""
    journey = customer_journey(touchpoints, config).transform(cache_columns)
    attributed = attribute(touchpoints, config, attribution)
    return JourneyTables(
        journey=journey,
        incomplete_purchases=incomplete_purchases(journey, config),
        funnels=funnels(journey, config),
        attribution=attributed.credits,
        paths=journey_paths(journey, config, end) if end is not None else None,
        removal_effects=attributed.markov.removal_effects if attributed.markov else {},
    )


def build_journeys(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime) -> JourneyResult:
    """Read, build, gate and write the journey tables; count what belongs to no customer."""
    conf = ProjectConfig.of(conf)
    # cached, not checkpointed: each of the many readers below scans only the columns it needs
    interactions = with_owner(lake.read(INTERACTIONS), lake.read(IDENTITY_MAP)).transform(cache_columns)
    touchpoints = owned(interactions)
    result = JourneyResult(touchpoint_frame=touchpoints, cached=[interactions])
    try:
        counts = unowned(interactions).collect()   # a row per source and reason
        result.unattributed = {(r.source, r.reason): r.interactions for r in counts}
        lake.replace_where(lake.rows(UNATTRIBUTED, [(run_id, r.source, r.reason, r.interactions, now)
                                                    for r in counts]), UNATTRIBUTED, f"run_id = '{run_id}'")
        tables = journey_tables(touchpoints, conf.journeys, conf.attribution, end_of_data(touchpoints))
        result.removal_effects = tables.removal_effects
        result.cached.append(tables.journey)
        with published(lake, conf, tables.frames(), run_id, "journeys") as written:   # counts read no table
            summary = (written[CUSTOMER_JOURNEY]
                       .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("customer_id").alias("c")).first())
            result.touchpoints, result.customers = summary["n"], summary["c"]
            result.rows = {t.qualified: result.touchpoints if t == CUSTOMER_JOURNEY else frame.count()
                           for t, frame in written.items()}
    except BaseException:
        result.release()
        raise
    result.cached = [interactions]   # the touchpoints stay cached for the profiles step: result.release() frees them
    return result
