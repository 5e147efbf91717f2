"""Identity resolution run: silver.identity_records -> gold identity tables and golden customer records.

Steps (docs/identity.md): junk values nulled -> anonymous records (no identifying attribute) set aside ->
deterministic rule edges (blocked by attribute tuple, household guard) -> their connected components ->
probabilistic edges (Splink, only across those clusters) merging them -> identifier caps -> name and
birth-date conflicts -> cluster-size cap -> stable customer ids seeded with the previous gold.identity_map ->
golden records. Each run recomputes the graph from all identity records; the previous
map is what keeps ids stable, so the incremental path and a full rebuild run the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.identity.config import IdentityConfig, load_identity_config
from cdp.identity.golden import golden_records
from cdp.identity.guards import (
    cap_cluster_size,
    cap_identifiers,
    cluster,
    guard_scope,
    mark_junk,
    merge_clusters,
    split_birth_date_conflicts,
    split_name_conflicts,
)
from cdp.identity.probabilistic import MatchingRun, probabilistic_edges
from cdp.identity.rules import deterministic_edges, with_derived_attributes
from cdp.identity.stable_ids import assign_customer_ids
from cdp.ingest.bronze import LINEAGE
from cdp.io import Lakehouse
from cdp.spark import cut_lineage

RECORDS = "silver.identity_records"
MAP = "gold.identity_map"
LINKS = "gold.identity_links"
CHANGES = "gold.identity_changes"
JUNK = "gold.identity_junk_values"
CAPPED = "gold.identity_capped_values"
REVIEW = "gold.identity_review"
SIZES = "gold.identity_cluster_sizes"
CUSTOMERS = "gold.customers"
ACROSS = "_deterministic_cluster"


@dataclass(frozen=True)
class IdentityResult:
    run_id: str
    records: int
    anonymous: int = 0
    matching: MatchingRun | None = None
    edges_by_rule: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    clusters: int = 0
    singletons: int = 0
    largest_cluster: int = 0
    junk_values: int = 0
    capped_values: int = 0
    review_clusters: int = 0
    new_customers: int = 0
    merges: int = 0
    splits: int = 0

    @property
    def edges(self) -> int:
        return sum(self.edges_by_rule.values())


def previous_map(lake: Lakehouse) -> DataFrame | None:
    if not lake.exists(MAP):
        return None
    # materialised: this run overwrites the table the plan would otherwise still read
    return lake.read(MAP).select("record_id", "customer_id", "minted_from").transform(cut_lineage)


def resolve_identities(lake: Lakehouse, settings: Settings, run_id: str, now: datetime,
                       config: IdentityConfig | None = None, previous: DataFrame | None | bool = True,
                       progress: Callable[[str, float], None] | None = None) -> IdentityResult:
    """Resolve every identity record into customers and (over)write the gold identity tables.

    previous=True seeds ids with the current gold.identity_map (stable ids); None/False = full rebuild.
    progress(phase, seconds) is called as each phase ends.
    """
    config = config or load_identity_config(settings)
    graph = settings.graph
    stamp = F.lit(now).cast("timestamp")
    seconds: dict[str, float] = {}
    lap = _stopwatch(seconds, progress)
    # the identity columns only: bronze lineage (file, hashes, run ids) would ride through every materialisation
    records = lake.read(RECORDS).drop(*LINEAGE).transform(cut_lineage)
    clean, junk = mark_junk(records, config)
    clean = identified(with_derived_attributes(clean, config), config).transform(cut_lineage)
    lap("junk and anonymous records")
    edges = deterministic_edges(clean, config).transform(cut_lineage)
    lap("deterministic rules")
    components = cluster(clean, edges, graph)
    lap("connected components")
    matching = None
    if config.matching:
        # Splink predicts only across deterministic clusters: a pair already linked would add nothing
        fuzzy, matching = probabilistic_edges(
            clean.join(components.withColumnRenamed("component", ACROSS), "record_id"), config.matching,
            config.household_guard.max_edit_distance, across=ACROSS)
        edges = edges.unionByName(fuzzy).transform(cut_lineage)
        components = merge_clusters(components, fuzzy, graph)
        lap("probabilistic matching (Splink)")
    # the guards run on the clusters they could change, cut out of the graph (guards.GuardScope)
    scope = guard_scope(clean, edges, components, config)
    lap("suspect clusters")
    suspect_edges, suspects, capped = cap_identifiers(scope.records, scope.edges, scope.components, config, graph)
    lap("identifier caps")
    suspect_edges, suspects, conflicts = split_name_conflicts(scope.records, suspect_edges, suspects, config, graph)
    suspect_edges, suspects, date_conflicts = split_birth_date_conflicts(scope.records, suspect_edges, suspects,
                                                                         config, graph)
    lap("name and birth-date conflicts")
    suspect_edges, suspects, review = cap_cluster_size(scope.records, suspect_edges, suspects, config, graph)
    review = review.unionByName(conflicts).unionByName(date_conflicts)
    edges, components = scope.rejoin(suspect_edges, suspects)
    lap("cluster-size cap")

    prev = previous_map(lake) if previous is True else (previous or None)
    prev_run = lake.read(MAP).select(F.max("run_id")).first()[0] if previous is True and prev is not None else None
    id_map, changes = assign_customer_ids(components, prev, run_id)
    id_map = id_map.transform(cut_lineage)

    # changes first, then the map: a run that crashed in between recomputes the same changes and replaces
    # them; a run whose map is already written (a re-run after success) keeps its recorded changes.
    changes = changes.withColumn("changed_at", stamp)
    if prev is None or prev_run != run_id:
        if lake.exists(CHANGES):
            lake.replace_where(changes, CHANGES, f"run_id = '{run_id}'")
        else:
            lake.overwrite(changes, CHANGES)
    lake.overwrite(
        id_map.join(records.select("record_id", "source", "source_record_key"), "record_id")
        .select("record_id", "source", "source_record_key", "customer_id", "minted_from",
                F.lit(run_id).alias("run_id"), stamp.alias("resolved_at")), MAP)
    lake.overwrite(
        edges.join(id_map.select(F.col("record_id").alias("src"), "customer_id"), "src")
        .select("src", "dst", "rule", F.col("attribute_values").alias("evidence"), "weight", "customer_id",
                F.lit(run_id).alias("run_id")), LINKS)
    lake.overwrite(junk.withColumn("run_id", F.lit(run_id)), JUNK)
    lake.overwrite(capped.withColumn("run_id", F.lit(run_id)), CAPPED)
    lake.overwrite(review.withColumn("run_id", F.lit(run_id)).withColumn("reviewed_at", F.lit(None).cast("timestamp")),
                   REVIEW)
    sizes = (id_map.groupBy("customer_id").agg(F.count("*").alias("size"))
             .groupBy("size").agg(F.count("*").alias("clusters")).orderBy("size"))
    lake.overwrite(sizes, SIZES)
    lake.overwrite(golden_records(clean, id_map, config).withColumn("run_id", F.lit(run_id))
                   .withColumn("updated_at", stamp), CUSTOMERS)
    lap("stable ids and gold tables")
    total = records.count()
    return summarize(lake, run_id, total, anonymous=total - clean.count(), matching=matching, seconds=seconds)


def _stopwatch(into: dict[str, float], progress: Callable[[str, float], None] | None = None):
    start = [time.monotonic()]

    def lap(phase: str) -> None:
        now_ = time.monotonic()
        into[phase] = round(now_ - start[0], 1)
        start[0] = now_
        if progress:
            progress(phase, into[phase])
    return lap


def identified(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """Records holding at least one identifying attribute; the others are anonymous and get no customer id."""
    present = [F.col(a).isNotNull() for a in config.identifying_attributes if a in records.columns]
    return records.where(reduce(lambda a, b: a | b, present))


def summarize(lake: Lakehouse, run_id: str, records: int, anonymous: int = 0,
              matching: MatchingRun | None = None, seconds: dict[str, float] | None = None) -> IdentityResult:
    sizes = [(r["size"], r["clusters"]) for r in lake.read(SIZES).collect()]  # one row per distinct size
    by_rule = {r["rule"]: r["n"] for r in lake.read(LINKS).groupBy("rule").agg(F.count("*").alias("n")).collect()}
    kinds = {r["change_type"]: r["n"] for r in lake.read(CHANGES).where(F.col("run_id") == run_id)
             .groupBy("change_type").agg(F.count("*").alias("n")).collect()}
    return IdentityResult(
        run_id=run_id, records=records, anonymous=anonymous, matching=matching, seconds=seconds or {}, edges_by_rule=dict(sorted(by_rule.items())),
        clusters=sum(n for _, n in sizes), singletons=sum(n for s, n in sizes if s == 1),
        largest_cluster=max((s for s, _ in sizes), default=0),
        junk_values=lake.row_count(JUNK), capped_values=lake.row_count(CAPPED), review_clusters=lake.row_count(REVIEW),
        new_customers=kinds.get("new", 0), merges=kinds.get("merge", 0), splits=kinds.get("split", 0),
    )


def explain_customer(lake: Lakehouse, customer_id: str) -> tuple[DataFrame, DataFrame]:
    """A customer's identity records (with their standardised identifiers) and the links that joined them."""
    members = lake.read(MAP).where(F.col("customer_id") == customer_id).select("record_id", "customer_id")
    records = members.join(lake.read(RECORDS), "record_id").orderBy("observed_at", "record_id")
    links = lake.read(LINKS).where(F.col("customer_id") == customer_id).orderBy("rule", "src", "dst")
    return records, links
