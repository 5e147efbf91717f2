"""Incremental identity benchmark (`make bench`): a batch of 1% new identity records on top of 1M, resolved
incrementally, against the full run before it and a full rebuild of the same input with the same saved model;
the gold identity tables of the incremental run and the rebuild compared row for row. Written to
docs/benchmarks.md.

    python jobs/bench_incremental.py [--dir bench_data] [--size 1000000] [--batch-percent 1]

1. The identity records of `--size` (jobs/bench_identity.py prepares them: generated, landed, standardised, the
   first k persons) minus a `--batch-percent` sample (by a hash of record_id) become silver.identity_records of a
   fresh lakehouse; `cdp run --steps identity` resolves them in full (Splink trained, model saved).
2. A copy of that lakehouse is taken; both then get all the records (the batch lands).
3. The first resolves incrementally (identity.mode auto), the copy in full (identity.mode full, same saved model),
   each in a fresh process: wall time of the identity step, peak JVM memory.
4. Every gold identity table of the two is compared (bookkeeping columns aside: run ids and timestamps).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_identity import CDP, DRIVER_MEMORY, lake_args, prepare, run_measured, subset
from bench_report import machine, publish

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "bench-incremental"
BOOKKEEPING = ("run_id", "resolved_at", "updated_at", "changed_at", "reviewed_at")


def identity_run(base: Path, lake: Path, name: str, *settings: str) -> dict:
    """`cdp run --steps identity` in a fresh process -> wall seconds of the step, JVM peak MB, the log."""
    log = base / f"incremental_{name}.log"
    cmd = [*CDP, "run", "--steps", "identity", *lake_args(lake, base / "data"), *settings,
           "--set", f"mlflow.tracking_uri={base / 'mlflow.db'}", "--set", f"mlflow.artifact_root={base / 'mlruns'}"]
    text, peak_mb = run_measured(cmd, log, f"the {name} identity run")
    return {"seconds": float(text.split("identity done in ")[1].split("s")[0]), "jvm_peak_mb": peak_mb, "log": str(log)}


def split_batch(spark, records_path: Path, lake: Path, percent: float) -> None:
    """silver.identity_records of `lake` = all records but the batch (version 0)."""
    from pyspark.sql import functions as F

    records = spark.read.format("delta").load(str(records_path))
    batch = F.abs(F.xxhash64("record_id")) % 10_000 < int(percent * 100)
    records.where(~batch).write.format("delta").save(str(lake / "silver" / "identity_records"))


def land_batch(spark, records_path: Path, lake: Path) -> None:
    spark.read.format("delta").load(str(records_path)).write.format("delta").mode("overwrite") \
        .save(str(lake / "silver" / "identity_records"))


def comparable(df):
    """Maps as sorted JSON text: set operations do not take map columns."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    return df.select(*[F.to_json(F.array_sort(F.map_entries(f.name))).alias(f.name)
                       if isinstance(f.dataType, MapType) else F.col(f.name) for f in df.schema.fields])


def compare(spark, incremental: Path, rebuilt: Path) -> dict[str, tuple[int, int]]:
    """table -> (rows, rows that differ between the two lakehouses, counted both ways)."""
    from cdp.tables import IDENTITY_TABLES

    out = {}
    for table in IDENTITY_TABLES:
        a, b = (spark.read.format("delta").load(str(lake / table.layer / table.name)) for lake in (incremental, rebuilt))
        if table.name == "identity_changes":   # the run's changes
            a, b = a.where(a.run_id == RUN_ID), b.where(b.run_id == RUN_ID)
        a, b = (comparable(df.drop(*[c for c in BOOKKEEPING if c in df.columns])) for df in (a, b))
        out[table.qualified] = (a.count(), a.exceptAll(b).count() + b.exceptAll(a).count())
    return out


def run_facts(spark, lake: Path) -> dict:
    """The incremental run's audit.identity_runs row."""
    return spark.read.format("delta").load(str(lake / "audit" / "identity_runs")).where(
        f"run_id = '{RUN_ID}'").first().asDict()


def write_report(path: Path, size: int, percent: float, runs: dict, facts: dict, diffs: dict, when: str,
                 started: float) -> int:
    full, inc, rebuild = runs["full"], runs["incremental"], runs["rebuild"]
    lines = [
        f"## Incremental identity resolution: {percent:g}% new records on top of {size // 1000:,}k",
        "",
        f"Machine: {machine()}. Run {when} by `jobs/bench_incremental.py`. The identity records of the identity benchmark's "
        f"{size:,} size, minus a {percent:g}% sample (by a hash of record_id), resolved in full (Splink trained, model "
        "saved); then the sample lands and the same state is resolved twice, each in a fresh `cdp` process: "
        "incrementally (`identity.mode: auto`) and as a full rebuild with the same saved model "
        "(`--set identity.mode=full`). Seconds are the identity step's wall time, tables written.",
        "",
        "| run | records | re-resolved | seconds | JVM peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| full, before the batch (trains the model) | {facts['before_records']:,} | all | {full['seconds']:.0f} | "
        f"{full['jvm_peak_mb']:,.0f} |",
        f"| incremental, the batch landed | {facts['records']:,} | {facts['region_records']:,} "
        f"({facts['dirty_records']:,} dirty) | **{inc['seconds']:.0f}** | {inc['jvm_peak_mb']:,.0f} |",
        f"| full rebuild of the same input, same model | {facts['records']:,} | all | {rebuild['seconds']:.0f} | "
        f"{rebuild['jvm_peak_mb']:,.0f} |",
        "",
        f"Incremental / full run before it: {inc['seconds'] / full['seconds']:.0%}; incremental / full rebuild: "
        f"{inc['seconds'] / rebuild['seconds']:.0%} (target: at most 20% of the full run).",
        "",
        "Same results: each gold identity table of the incremental run against the rebuild's, rows differing counted both "
        "ways (run ids and timestamps aside; identity_changes: this run's rows).",
        "",
        "| table | rows | rows differing |",
        "| --- | ---: | ---: |",
        *[f"| {t} | {rows:,} | {d:,} |" for t, (rows, d) in diffs.items()],
        "",
        f"Reproduce: `python jobs/bench_incremental.py --size {size} --batch-percent {percent:g}` "
        "(after `python jobs/bench_identity.py` has prepared the records).",
    ]
    return publish(path, "identity-incremental", "\n".join(lines), started)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT / "bench_data"))
    ap.add_argument("--customers", type=int, default=90_000)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--batch-percent", type=float, default=1.0)
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    base = Path(args.dir).resolve()
    t0 = time.monotonic()
    prepare(base, args.customers)
    subset(base, [args.size])
    records = base / "sizes" / str(args.size) / "silver" / "identity_records"
    work = base / "incremental" / str(args.size)
    inc_lake, rebuild_lake = work / "incremental", work / "rebuild"
    shutil.rmtree(work, ignore_errors=True)

    from cdp.config import load_settings
    from cdp.spark import build_spark, stop_spark

    settings = load_settings("local", overrides=[f"spark.conf.spark.driver.memory={DRIVER_MEMORY}"])
    spark = build_spark(settings, app_name="cdp-bench-incremental")
    split_batch(spark, records, inc_lake, args.batch_percent)
    before = spark.read.format("delta").load(str(inc_lake / "silver" / "identity_records")).count()
    stop_spark(spark)

    runs = {}
    print(f"full run on {before:,} records ...", flush=True)
    runs["full"] = identity_run(base, inc_lake, "full")
    shutil.copytree(inc_lake, rebuild_lake)
    spark = build_spark(settings, app_name="cdp-bench-incremental")
    for lake in (inc_lake, rebuild_lake):
        land_batch(spark, records, lake)
    stop_spark(spark)
    print("incremental run ...", flush=True)
    # one run id for both: an id minted again for a split-off part is seeded with it
    runs["incremental"] = identity_run(base, inc_lake, "incremental", "--run-id", RUN_ID)
    print("full rebuild with the saved model ...", flush=True)
    runs["rebuild"] = identity_run(base, rebuild_lake, "rebuild", "--run-id", RUN_ID, "--set", "identity.mode=full")
    spark = build_spark(settings, app_name="cdp-bench-incremental")
    facts = {**run_facts(spark, inc_lake), "before_records": before}
    diffs = compare(spark, inc_lake, rebuild_lake)
    stop_spark(spark)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_report(Path(args.report), args.size, args.batch_percent, runs, facts, diffs, when, t0)
    if facts["mode"] != "incremental" or any(d for _, d in diffs.values()):
        print("error: the batch was not resolved incrementally, or its tables differ from the full rebuild's")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
