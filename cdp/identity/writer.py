"""Identity resolution, the writer: decide full or incremental (`plan_run`), read the identity records and what
the last run left (map, saved model, the records version it read), run `resolve` or `resolve_increment`, check
the output against the gold contracts, write the gold identity tables (a full run overwrites them, an incremental
one replaces the region's rows), keep the model and the run in audit.identity_runs, and summarise the run."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp import faults
from cdp.config import Settings
from cdp.config.identity import IdentityConfig
from cdp.config.project import ProjectConfig
from cdp.errors import ConfigError
from cdp.frames import cut_lineage
from cdp.identity.attributes import with_custom_attributes
from cdp.identity.incremental import IdentityState, Increment, resolve_increment
from cdp.identity.probabilistic import MatchingRun, SavedModel
from cdp.identity.resolve import IdentityTables, Progress, resolve, stopwatch
from cdp.io import Lakehouse
from cdp.quality.gold import publish
from cdp.tables import (
    CUSTOMERS,
    IDENTITY_CAPPED_VALUES,
    IDENTITY_CHANGES,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_JUNK_VALUES,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_MATCH_SCORES,
    IDENTITY_MODEL,
    IDENTITY_RECORDS,
    IDENTITY_REVIEW,
    IDENTITY_RUNS,
    IDENTITY_TERM_FREQUENCIES,
    LINEAGE,
    Table,
)


@dataclass(frozen=True)
class IdentityResult:
    run_id: str
    records: int
    anonymous: int = 0
    matching: MatchingRun | None = None
    edges_by_rule: dict[str, int] = field(default_factory=dict)   # links kept in gold.identity_links, by rule
    seconds: dict[str, float] = field(default_factory=dict)       # wall time per phase
    clusters: int = 0
    singletons: int = 0
    largest_cluster: int = 0
    junk_values: int = 0
    capped_values: int = 0
    review_clusters: int = 0
    new_customers: int = 0
    merges: int = 0
    splits: int = 0
    mode: str = "full"                  # full | incremental (audit.identity_runs)
    reason: str = ""
    dirty_records: int | None = None    # incremental: new, changed, deleted, junk flipped
    region_records: int | None = None   # records re-resolved

    @property
    def edges(self) -> int:
        return sum(self.edges_by_rule.values())


def previous_map(lake: Lakehouse) -> DataFrame | None:
    if not lake.exists(IDENTITY_MAP):
        return None
    # materialised: this run overwrites the table the plan would otherwise still read
    return lake.read(IDENTITY_MAP).select("record_id", "customer_id", "minted_from").transform(cut_lineage)


def changes_first(frames: dict[Table, DataFrame]) -> dict[Table, DataFrame]:
    """The gold identity frames in the order they are written: the changes first, then the map and the others."""
    return {IDENTITY_CHANGES: frames[IDENTITY_CHANGES], **{t: f for t, f in frames.items() if t != IDENTITY_CHANGES}}


def full_run_writes(run_id: str, replace_changes: bool = True) -> Callable[[Lakehouse, Table, DataFrame], None]:
    """How a full run writes each gold identity table (in changes_first order): the changes replace this run's
    rows, every other table is overwritten. A run that crashed between the changes and the map recomputes the same
    changes and replaces them; a re-run of a run whose map is already written (replace_changes=False) keeps the
    changes it recorded."""
    def write(lake: Lakehouse, table: Table, frame: DataFrame) -> None:
        if table == IDENTITY_CHANGES:
            _write_changes(lake, frame, run_id, replace_changes)
        else:
            lake.overwrite(frame, table)
    return write


def write_identity_tables(lake: Lakehouse, tables: IdentityTables, run_id: str, replace_changes: bool = True) -> None:
    """Write every gold identity table as a full run does, ungated (the step gates them: resolve_identities)."""
    write = full_run_writes(run_id, replace_changes)
    for table, frame in changes_first(tables.frames()).items():
        write(lake, table, frame)


def _write_changes(lake: Lakehouse, changes: DataFrame, run_id: str, replace: bool) -> None:
    if replace:
        lake.replace_where(changes, IDENTITY_CHANGES, f"run_id = '{run_id}'")


# ------------------------------------------------------------------ full or incremental: the plan and the state
def fingerprint(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_fingerprint(config: IdentityConfig) -> str:
    return fingerprint(config.model_dump(mode="json"))


def model_fingerprint(config: IdentityConfig) -> str | None:
    p = config.matching
    if p is None:
        return None
    loaded = Path(p.model).read_text() if p.model and Path(p.model).is_file() else None
    return fingerprint([p.model_dump(mode="json"), loaded])


@dataclass(frozen=True)
class RunPlan:
    mode: str                      # full | incremental
    reason: str
    last: dict | None = None       # the last audit.identity_runs row
    saved: SavedModel | None = None
    model_id: str | None = None


def last_identity_run(lake: Lakehouse) -> dict | None:
    if not lake.exists(IDENTITY_RUNS):
        return None
    row = lake.read(IDENTITY_RUNS).orderBy(F.col("resolved_at").desc(), F.col("run_id").desc()).first()
    return row.asDict() if row else None


def saved_model(lake: Lakehouse, config: IdentityConfig) -> tuple[SavedModel | None, str | None]:
    """The latest model of gold.identity_model when it was made under this probabilistic configuration."""
    if config.matching is None or not lake.exists(IDENTITY_MODEL):
        return None, None
    row = lake.read(IDENTITY_MODEL).orderBy(F.col("trained_at").desc(), F.col("model_id").desc()).first()
    if row is None or row["model_fingerprint"] != model_fingerprint(config):
        return None, None
    tf = (lake.read(IDENTITY_TERM_FREQUENCIES).where(F.col("model_id") == row["model_id"])
          .select("attribute", "value", "tf").transform(cut_lineage))
    return SavedModel(json.loads(row["model_json"]), tf), row["model_id"]


def plan_run(lake: Lakehouse, settings: Settings, config: IdentityConfig, rebuild_ids: bool) -> RunPlan:
    """Full or incremental, and why; an incremental run that cannot be done when asked for is a ConfigError."""
    wanted = settings.identity.mode
    saved, model_id = (None, None) if settings.identity.retrain else saved_model(lake, config)
    last = last_identity_run(lake)

    def full(reason: str) -> RunPlan:
        if wanted == "incremental":
            raise ConfigError(f"identity.mode is incremental, but {reason}; run once with identity.mode auto or full")
        return RunPlan("full", reason, last, saved, model_id)

    if wanted == "full":
        return RunPlan("full", "identity.mode is full", last, saved, model_id)
    if rebuild_ids:
        return full("customer ids are rebuilt from scratch")
    if last is None or not lake.exists(IDENTITY_MAP):
        return full("no earlier identity run to build on")
    if "match_group" not in lake.read(IDENTITY_MAP).columns:
        return full("gold.identity_map was written before match groups were kept")
    if last["config_fingerprint"] != config_fingerprint(config):
        return full(f"the identity configuration changed since run {last['run_id']}")
    if config.matching is not None and saved is None:
        return full("identity.retrain is true" if settings.identity.retrain
                    else "no saved probabilistic model for this configuration")
    if not lake.version_readable(IDENTITY_RECORDS, last["records_version"]):  # time travel finds the changes
        return full(f"silver.identity_records version {last['records_version']} (run {last['run_id']}) "
                    "is no longer readable (vacuumed)")
    return RunPlan("incremental", f"builds on run {last['run_id']}", last, saved, model_id)


def save_model(lake: Lakehouse, conf: ProjectConfig, matching: MatchingRun, run_id: str, now: datetime,
               config: IdentityConfig) -> str:
    """Keep the model a full run trained (or loaded) with its term frequencies; returns its model_id."""
    model_id = run_id
    row = lake.spark.createDataFrame(
        [(model_id, run_id, now, model_fingerprint(config), matching.trained, matching.candidates,
          json.dumps(matching.model, sort_keys=True, default=str))], IDENTITY_MODEL.schema)
    tf = matching.term_frequencies.select(F.lit(model_id).alias("model_id"), "attribute", "value", "tf")

    def write(lake: Lakehouse, table: Table, frame: DataFrame) -> None:
        if table == IDENTITY_TERM_FREQUENCIES:
            lake.replace_where(frame, table, f"model_id = '{model_id}'")
        else:
            lake.merge(frame, table)
    # the frequencies first: a model row is only ever read with its frequencies in place
    publish(lake, conf, {IDENTITY_TERM_FREQUENCIES: tf, IDENTITY_MODEL: row}, run_id, "identity", write,
            materialise=cut_lineage)
    return model_id


def record_run(lake: Lakehouse, run_id: str, plan: RunPlan, version: int, config: IdentityConfig, model_id: str | None,
               counts: dict[str, int], seconds: float, now: datetime) -> None:
    row = lake.spark.createDataFrame(
        [(run_id, plan.mode, plan.reason, version, config_fingerprint(config), model_id, counts.get("records"),
          counts.get("dirty"), counts.get("region"), float(seconds), now)], IDENTITY_RUNS.schema)
    lake.merge(row, IDENTITY_RUNS)


# ------------------------------------------------------------------ the identity step
def resolve_identities(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str, now: datetime,
                       config: IdentityConfig | None = None, previous: DataFrame | None | bool = True,
                       progress: Progress | None = None) -> IdentityResult:
    """Resolve the identity records into customers and write the gold identity tables: incrementally (the
    records changed since the last run and the clusters they reach) or in full, as `plan_run` decides.

    previous=True seeds ids with the current gold.identity_map (stable ids); None/False = full rebuild of the ids.
    """
    conf = ProjectConfig.of(conf)
    settings, config = conf.settings, config or conf.identity
    started = time.monotonic()
    plan = plan_run(lake, settings, config, rebuild_ids=previous is not True)
    version = lake.version(IDENTITY_RECORDS)
    records = lake.read(IDENTITY_RECORDS, version=version)
    if progress:
        progress(f"{plan.mode} run: {plan.reason}", 0.0)
    if plan.mode == "incremental":
        seconds: dict[str, float] = {}
        lap = stopwatch(seconds, progress)
        state = _state(lake, plan, config, records)
        lap("last run's state read")
        inc = resolve_increment(state, config, settings, run_id=run_id, now=now, progress=progress)
        lap = stopwatch(seconds, progress)
        if inc.tables is not None:   # None: nothing changed, every table already holds this run's answer
            seconds.update(inc.tables.seconds)
            write_increment(lake, conf, inc, run_id, lap)
        counts, matching, model_id = inc.counts, None, plan.model_id
    else:
        prev = previous_map(lake) if previous is True else (previous or None)
        prev_run = (lake.read(IDENTITY_MAP).select(F.max("run_id")).first()[0]
                    if previous is True and prev is not None else None)
        tables = resolve(records, prev, config, settings, run_id=run_id, now=now, progress=progress,
                         saved=plan.saved)
        lap = stopwatch(tables.seconds, progress)
        # checkpointed, not cached: some frames read the identity tables written below
        publish(lake, conf, changes_first(tables.frames()), run_id, "identity",
                full_run_writes(run_id, replace_changes=prev is None or prev_run != run_id), materialise=cut_lineage)
        matching, model_id = tables.matching, plan.model_id
        if matching is not None and plan.saved is None and matching.model:   # trained or loaded here: keep it
            model_id = save_model(lake, conf, matching, run_id, now, config)
        lap("gold tables and their contracts")
        n = records.count()
        counts, seconds = {"records": n, "dirty": None, "region": n}, tables.seconds
    record_run(lake, run_id, plan, version, config, model_id, counts, time.monotonic() - started, now)
    lap("run recorded")
    return summarize(lake, run_id, counts["records"], matching=matching, seconds=seconds, mode=plan.mode,
                     reason=plan.reason, dirty=counts.get("dirty"), region=counts.get("region"))


def _state(lake: Lakehouse, plan: RunPlan, config: IdentityConfig, records: DataFrame) -> IdentityState:
    def identity_columns(df: DataFrame) -> DataFrame:
        return df.drop(*LINEAGE).transform(with_custom_attributes(config))

    return IdentityState(
        previous_records=identity_columns(lake.read(IDENTITY_RECORDS, version=plan.last["records_version"])),
        records=identity_columns(records),
        identity_map=lake.read(IDENTITY_MAP).transform(cut_lineage),
        junk_values=lake.read(IDENTITY_JUNK_VALUES).transform(cut_lineage),
        saved=plan.saved,
    )


def write_increment(lake: Lakehouse, conf: ProjectConfig, inc: Increment, run_id: str,
                    lap: Callable[[str], None] = lambda _phase: None) -> None:
    """Replace the region's rows of each gold identity table (one MERGE each for the big ones; the small ones
    rewritten), after checking the region's new rows against the contracts."""
    t = inc.tables
    touched = inc.region_before.unionByName(inc.region_after).distinct().transform(cut_lineage)
    dirty = inc.dirty
    old_map = lake.read(IDENTITY_MAP)
    # what the region's new rows replace, read before anything is written
    gone_customers = old_map.join(touched, "record_id", "left_semi").select("customer_id").distinct() \
        .transform(cut_lineage)
    gone_links = lake.read(IDENTITY_LINKS).join(touched.withColumnRenamed("record_id", "src"), "src", "left_semi") \
        .select("src", "dst", "rule").transform(cut_lineage)
    flag = touched.withColumn("_t", F.lit(True))
    d = dirty.withColumn("_d", F.lit(True))
    scores = (lake.read(IDENTITY_MATCH_SCORES).select("src", "dst")
              .join(flag.withColumnRenamed("record_id", "src"), "src", "left")
              .join(flag.withColumnRenamed("record_id", "dst").withColumnRenamed("_t", "_t2"), "dst", "left")
              .join(d.withColumnRenamed("record_id", "src"), "src", "left")
              .join(d.withColumnRenamed("record_id", "dst").withColumnRenamed("_d", "_d2"), "dst", "left"))
    gone_scores = scores.where((F.col("_t") & F.col("_t2")) | F.col("_d").isNotNull() | F.col("_d2").isNotNull()) \
        .select("src", "dst").transform(cut_lineage)
    small = {
        IDENTITY_CAPPED_VALUES: lake.read(IDENTITY_CAPPED_VALUES).join(
            touched.withColumnRenamed("record_id", "component"), "component", "left_anti").unionByName(t.capped_values),
        IDENTITY_REVIEW: lake.read(IDENTITY_REVIEW).join(
            touched.withColumnRenamed("record_id", "cluster_root"), "cluster_root", "left_anti").unionByName(t.review),
    }
    # written in this order: the changes, the big tables (one MERGE each, the map last), the small ones rewritten
    region = {IDENTITY_CHANGES: t.changes,
              IDENTITY_MATCH_SCORES: t.match_scores.unionByName(inc.dirty_scores.withColumn("run_id", F.lit(run_id))),
              IDENTITY_LINKS: t.links, CUSTOMERS: t.customers, IDENTITY_MAP: t.identity_map,
              IDENTITY_JUNK_VALUES: t.junk_values,
              **{table: frame.transform(cut_lineage) for table, frame in small.items()}}
    replaced = {IDENTITY_MATCH_SCORES: gone_scores, IDENTITY_LINKS: gone_links, CUSTOMERS: gone_customers,
                IDENTITY_MAP: touched}

    def write(lake: Lakehouse, table: Table, frame: DataFrame) -> None:
        if table == IDENTITY_CHANGES:
            _write_changes(lake, frame, run_id, replace=True)
        elif table in replaced:
            replace_rows(lake, table, frame, replaced[table])
        else:
            lake.overwrite(frame, table)
    publish(lake, conf, region, run_id, "identity", write, materialise=cut_lineage, partial=True)
    lap("the region's rows: their contracts, merged and rewritten")
    sizes = (lake.read(IDENTITY_MAP).groupBy("customer_id").agg(F.count("*").alias("size"))
             .groupBy("size").agg(F.count("*").alias("clusters")).orderBy("size"))
    publish(lake, conf, {IDENTITY_CLUSTER_SIZES: sizes}, run_id, "identity", materialise=cut_lineage)
    lap("cluster sizes rewritten")


def replace_rows(lake: Lakehouse, table: Table, rows: DataFrame, replaced: DataFrame) -> None:
    """One MERGE on the table's key: `replaced` (key columns) rows are deleted unless `rows` has them again, the
    `rows` are updated or inserted."""
    keys = list(table.key)
    columns = lake.read(table).columns
    lake.enable_deletion_vectors(table)   # a region's rows are spread over every file: mark them, do not rewrite all
    tombstones = replaced.select(*keys).join(rows.select(*keys), keys, "left_anti")
    source = (rows.select(*columns).withColumn("_delete", F.lit(False))
              .unionByName(tombstones.withColumn("_delete", F.lit(True)), allowMissingColumns=True))
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    values = {f"`{c}`": f"s.`{c}`" for c in columns}
    (lake.delta_table(table).alias("t").merge(faults.writing(source, table).alias("s"), on)
     .whenMatchedDelete(condition="s._delete")
     .whenMatchedUpdate(set=values)
     .whenNotMatchedInsert(condition="NOT s._delete", values=values)
     .execute())
    faults.written(table)


def summarize(lake: Lakehouse, run_id: str, records: int, matching: MatchingRun | None = None,
              seconds: dict[str, float] | None = None, mode: str = "full", reason: str = "",
              dirty: int | None = None, region: int | None = None) -> IdentityResult:
    """The run's figures, read back from the tables it wrote (small aggregates)."""
    sizes = [(r["size"], r["clusters"]) for r in lake.read(IDENTITY_CLUSTER_SIZES).collect()]  # one row per size
    by_rule = {r["rule"]: r["n"] for r in lake.read(IDENTITY_LINKS).groupBy("rule").agg(F.count("*").alias("n")).collect()}
    kinds = {r["change_type"]: r["n"] for r in lake.read(IDENTITY_CHANGES).where(F.col("run_id") == run_id)
             .groupBy("change_type").agg(F.count("*").alias("n")).collect()}
    mapped = sum(s * n for s, n in sizes)
    return IdentityResult(
        run_id=run_id, records=records, anonymous=records - mapped, matching=matching, seconds=seconds or {},
        mode=mode, reason=reason, dirty_records=dirty, region_records=region,
        edges_by_rule=dict(sorted(by_rule.items())),
        clusters=sum(n for _, n in sizes), singletons=sum(n for s, n in sizes if s == 1),
        largest_cluster=max((s for s, _ in sizes), default=0),
        junk_values=lake.row_count(IDENTITY_JUNK_VALUES), capped_values=lake.row_count(IDENTITY_CAPPED_VALUES),
        review_clusters=lake.row_count(IDENTITY_REVIEW),
        new_customers=kinds.get("new", 0), merges=kinds.get("merge", 0), splits=kinds.get("split", 0),
    )


def explain_customer(lake: Lakehouse, customer_id: str) -> tuple[DataFrame, DataFrame]:
    """A customer's identity records (with their standardised identifiers) and the links that joined them."""
    members = lake.read(IDENTITY_MAP).where(F.col("customer_id") == customer_id).select("record_id", "customer_id")
    records = members.join(lake.read(IDENTITY_RECORDS), "record_id").orderBy("observed_at", "record_id")
    links = lake.read(IDENTITY_LINKS).where(F.col("customer_id") == customer_id).orderBy("rule", "src", "dst")
    return records, links
