"""Identity-resolution benchmark (`make bench`): time and peak memory from 100k to 1M identity records, accuracy
against ground truth at every size, the scaling exponent, all written to docs/benchmarks.md.

    python jobs/bench_identity.py [--dir bench_data] [--customers 90000] [--sizes 100000,250000,500000,1000000]

1. Once: `cdp generate` --customers into <dir>/data and `cdp run --steps bronze,silver` into <dir>/lakehouse
   (reused when present; ~25 min on 2 cores for 90k customers / 4.4M source rows).
2. Per size: the identity records of the first k persons (k chosen so the subset holds about `size` records) are
   written once to <dir>/sizes/<size>/silver/identity_records, then resolved by a fresh `cdp` process
   (`identity` + `identity_eval` steps) so each size has its own JVM; wall time is measured around the
   identity step only, peak memory is the JVM's VmHWM (peak resident set) read from /proc before it exits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_report import replace_section, scaling_exponent

ROOT = Path(__file__).resolve().parents[1]
CDP = [sys.executable, "-m", "cdp.cli"]
DRIVER_MEMORY = "8g"


def _set(**paths: str) -> list[str]:
    out = []
    for key, value in paths.items():
        out += ["--set", f"{key}={value}"]
    return out


def lake_args(lakehouse: Path, data: Path) -> list[str]:
    return _set(**{"paths.landing": data / "landing", "paths.ground_truth": data / "ground_truth",
                   "paths.lakehouse": lakehouse, "paths.checkpoints": lakehouse / "_checkpoints",
                   "paths.reports": lakehouse / "reports", "spark.conf.spark.driver.memory": DRIVER_MEMORY})


def prepare(base: Path, customers: int) -> None:
    data, lake = base / "data", base / "lakehouse"
    if not (data / "ground_truth" / "persons").is_dir():
        subprocess.run([*CDP, "generate", "--customers", str(customers), "--seed", "7", "--out", str(data),
                        "--workers", "2"], check=True, cwd=ROOT)
    if not (lake / "silver" / "identity_records" / "_delta_log").is_dir():
        subprocess.run([*CDP, "run", "--steps", "bronze,silver", *lake_args(lake, data)], check=True, cwd=ROOT)


def subset(base: Path, sizes: list[int]) -> dict[int, int]:
    """Write the identity records of the first k persons for each size; returns size -> records written."""
    todo = [s for s in sizes if not (base / "sizes" / str(s) / "silver" / "identity_records" / "_delta_log").is_dir()]
    counts_file = base / "sizes" / "counts.json"
    counts = {int(k): v for k, v in json.loads(counts_file.read_text()).items()} if counts_file.exists() else {}
    if not todo and all(s in counts for s in sizes):
        return counts
    from pyspark.sql import functions as F

    from cdp.config import load_settings
    from cdp.identity.evaluate import load_truth, truth_for_records
    from cdp.spark import build_spark, stop_spark

    settings = load_settings("local", overrides=[f"spark.conf.spark.driver.memory={DRIVER_MEMORY}"])
    spark = build_spark(settings, app_name="cdp-bench-subset")
    records = spark.read.format("delta").load(str(base / "lakehouse" / "silver" / "identity_records"))
    owners = truth_for_records(records, load_truth(spark, base / "data" / "ground_truth")).select(
        "record_id", F.substring("person_id", 2, 12).cast("long").alias("person"))
    total, persons = records.count(), owners.agg(F.max("person")).first()[0]
    indexed = records.join(owners, "record_id").cache()
    for size in todo:
        k = math.ceil(persons * size / total)
        out = base / "sizes" / str(size) / "silver" / "identity_records"
        indexed.where(F.col("person") <= k).drop("person").write.format("delta").mode("overwrite").save(str(out))
        counts[size] = spark.read.format("delta").load(str(out)).count()
        print(f"  subset {size:,}: {k:,} persons, {counts[size]:,} identity records", flush=True)
    counts_file.write_text(json.dumps(counts))
    stop_spark(spark)
    return counts


def _jvm_peak_rss(parent: int, peaks: dict, stop: threading.Event) -> None:
    """Poll the JVM children of `parent`: keep the largest VmHWM (peak resident set, kB) seen."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent and "java" in Path(f"/proc/{pid}/comm").read_text(errors="ignore"):
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        peaks["jvm_kb"] = max(peaks.get("jvm_kb", 0), int(line.split()[1]))
        stop.wait(1.0)


def run_measured(cmd: list[str], log: Path, what: str) -> tuple[str, float]:
    """Run a `cdp` command in a fresh process, its output to `log` -> (the output, the JVM's peak resident set
    in MB); SystemExit with one line if it fails."""
    peaks: dict = {}
    stop = threading.Event()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "COLUMNS": "160"})
        watcher = threading.Thread(target=_jvm_peak_rss, args=(proc.pid, peaks, stop), daemon=True)
        watcher.start()
        proc.wait()
        stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"error: {what} failed (exit {proc.returncode}); see {log}")
    return log.read_text(), peaks.get("jvm_kb", 0) / 1024


def resolve(base: Path, size: int) -> dict:
    """Resolve one size in a fresh process: identity then identity_eval; wall time of the identity step."""
    lake = base / "sizes" / str(size)
    # a full rebuild every time: drop the previous run's gold tables
    for stale in (lake / "gold", lake / "_checkpoints"):
        shutil.rmtree(stale, ignore_errors=True)
    log = base / f"resolve_{size}.log"
    cmd = [*CDP, "run", "--steps", "identity,identity_eval", *lake_args(lake, base / "data"),
           "--set", f"mlflow.tracking_uri={base / 'mlflow.db'}", "--set", f"mlflow.artifact_root={base / 'mlruns'}"]
    text, peak_mb = run_measured(cmd, log, f"resolving {size:,} records")
    seconds = float(text.split("identity done in ")[1].split("s")[0])
    metrics, phases = {}, {}
    wanted = {"precision", "recall", "f1", "clusters", "persons", "over_merged_clusters", "under_merged_persons",
              "evidence_ceiling_recall"}
    for name, value in _two_column_rows(text):  # the printed rich tables: one pass
        if name in wanted:
            metrics[name] = value
        elif name.startswith("seconds: "):
            phases[name[len("seconds: "):]] = value
    return {"seconds": seconds, "jvm_peak_mb": peak_mb, "phases": phases, **metrics}


def _two_column_rows(text: str):
    """(name, number) for every two-cell row of the tables `cdp run` prints."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if len(cells) == 2:
            try:
                yield cells[0], float(cells[1].replace(",", ""))
            except ValueError:
                continue


def write_report(rows: list[dict], customers: int, path: Path) -> str:
    b = scaling_exponent([r["records"] for r in rows], [r["seconds"] for r in rows])
    cpu = os.cpu_count()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "Written by `make bench` (`jobs/bench_identity.py`); numbers are from the last run on the machine below.",
        "",
        f"Machine: {cpu} cores, {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}; local Spark (`local[*]`), driver memory {DRIVER_MEMORY}. "
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "## Identity resolution: 100k to 1M identity records",
        "",
        f"Data: `cdp generate --customers {customers} --seed 7`, landed and standardised by `cdp run --steps "
        "bronze,silver`; each size is the identity records of the first *k* persons (whole persons, so every size "
        "has the same mix of channels). Time is the `identity` step alone (junk guard, deterministic rules, Splink "
        "training and prediction, connected components, guards, stable ids, all gold identity tables written) "
        "in a fresh process; peak memory is the JVM's peak resident set (VmHWM). Accuracy is pairwise against the "
        "generator's ground truth over the records that got a customer id; the evidence ceiling is the recall "
        "of an oracle that links one person's records sharing a value some rule links on (docs/identity.md).",
        "",
        "| identity records | persons | identity step (s) | records / s | JVM peak RSS (MB) | precision | recall | F1 "
        "| evidence-ceiling recall | over-merged clusters | split persons |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['records']:,} | {int(r.get('persons', 0)):,} | {r['seconds']:.0f} | {r['records'] / r['seconds']:,.0f} "
            f"| {r['jvm_peak_mb']:,.0f} | {r.get('precision', float('nan')):.4f} | {r.get('recall', float('nan')):.4f} "
            f"| {r.get('f1', float('nan')):.4f} | {r.get('evidence_ceiling_recall', float('nan')):.4f} "
            f"| {int(r.get('over_merged_clusters', 0)):,} "
            f"| {int(r.get('under_merged_persons', 0)):,} |")
    biggest = max(rows, key=lambda r: r["records"])
    phase_names = list(dict.fromkeys(p for r in rows for p in r.get("phases", {})))
    if phase_names:
        lines += ["", "Where the time goes (seconds per phase of the identity step):", "",
                  "| phase | " + " | ".join(f"{r['records']:,}" for r in rows) + " |",
                  "| --- | " + " | ".join("---:" for _ in rows) + " |"]
        for p in phase_names:
            lines.append(f"| {p} | " + " | ".join(f"{r.get('phases', {}).get(p, float('nan')):.0f}" for r in rows) + " |")
    lines += [
        "",
        f"Scaling exponent (least squares of log time on log records, time ~ records^b): **b = {b:.2f}** "
        "(1.0 = linear).",
        f"Largest size: {biggest['records']:,} records in {biggest['seconds'] / 60:.1f} min "
        f"(target for 1,000,000: under 10 min) with a JVM peak of {biggest['jvm_peak_mb']:,.0f} MB.",
        *([f"Projected to 1,000,000 records with that exponent: "
           f"{biggest['seconds'] * (1e6 / biggest['records']) ** b / 60:.0f} min."]
          if biggest["records"] < 900_000 and len(rows) > 1 else []),
        "",
        "Reproduce:",
        "",
        "```bash",
        "make bench                                   # prepares bench_data/ once (~25 min), then every size",
        f"python jobs/bench_identity.py --customers {customers} --sizes 100000,1000000   # a subset of sizes",
        "```",
        "",
    ]
    text = "\n".join(lines)
    replace_section(path, "identity", text)   # the other benchmarks' sections and the hand-written notes stay
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT / "bench_data"))
    ap.add_argument("--customers", type=int, default=90_000)
    ap.add_argument("--sizes", default="100000,250000,500000,1000000")
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    base = Path(args.dir).resolve()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    t0 = time.monotonic()
    prepare(base, args.customers)
    counts = subset(base, sizes)
    rows = []
    for size in sizes:
        print(f"resolving {counts[size]:,} identity records ...", flush=True)
        res = resolve(base, size)
        rows.append({"size": size, "records": counts[size], **res})
        print(f"  {res['seconds']:.0f}s, JVM peak {res['jvm_peak_mb']:,.0f} MB, precision {res.get('precision', 0):.4f}, "
              f"recall {res.get('recall', 0):.4f}, F1 {res.get('f1', 0):.4f}", flush=True)
    print(write_report(rows, args.customers, Path(args.report)))
    print(f"bench done in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
