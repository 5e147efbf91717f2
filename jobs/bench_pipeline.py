"""The whole pipeline at 10k, 100k and 300k customers against Spark's own write-once floor (`make bench`).

Per size: `cdp generate --customers N --seed 7` (about 48 landing rows per customer, with the default
`synth.hostile_share` of 0.2 %: malformed lines, 1 MB values, year 9999, ...), then `cdp run --json` in a fresh
process on an empty lakehouse, then the floor in another fresh process: every landing file read once and written
once to Delta with the same Spark settings (conf/local.yaml), nothing else (CSV with its header, JSON lines as
text, Parquet as it is; the session's start is not counted, as a run's step times do not count it). At the
smallest size a second `cdp run` with nothing new (day two).

The section it writes: per size and step the seconds, rows in and out, rows per second, the Spark jobs and stages
the step launched and the peak resident memory of the driver's JVM and of the Python process (cdp.costs); per
size the whole run against the floor; per step the scaling exponent (least squares of log time on log customers);
the targets met or not. The figures are kept in the section (a JSON comment), so the next run says which step got
more than 20 % slower at the same size.

    python jobs/bench_pipeline.py [--customers 10000,100000,300000] [--seed 7] [--work bench_data/pipeline]
                                  [--report docs/benchmarks.md] [--day-two 10000] [--reuse 10000]
                                  [--set spark.conf.spark.driver.memory=12g ...]
    python jobs/bench_pipeline.py --floor LANDING OUT [KEY=VALUE ...]   (one floor measurement, in its process)

Each size's figures are kept in its work folder (result.json, with the commit and load they were measured at), so a
long size can run in its own invocation: `--customers 100000 --reuse 10000` measures 100k and reports it beside the
10k figures measured before, each row naming its own commit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_identity import run_measured
from bench_report import machine, publish, scaling_exponent

ROOT = Path(__file__).resolve().parents[1]
CDP = [sys.executable, "-m", "cdp"]
SECTION = "pipeline"
FIGURES = re.compile(r"<!-- figures: (\{.*?\}) -->", re.S)
SLOWER = 1.20          # a step this much slower than its last figure at the same size is called out
NOISE_SECONDS = 2.0    # ... unless it moved by less than this (small steps jitter by a second or two)
FLOOR_RATIO_300K, FLOOR_RATIO_DEMO, EXPONENT = 3.0, 4.0, 1.1   # issue #28's targets


def paths(work: Path) -> list[str]:
    data = work / "data"
    return ["--set", f"paths.landing={data / 'landing'}", "--set", f"paths.ground_truth={data / 'ground_truth'}",
            "--set", f"paths.lakehouse={work / 'lakehouse'}", "--set", f"paths.checkpoints={work / 'checkpoints'}",
            "--set", f"paths.reports={work / 'reports'}", "--set", f"mlflow.tracking_uri={work / 'mlflow.db'}",
            "--set", f"mlflow.artifact_root={work / 'mlruns'}"]


def generated(work: Path, customers: int, seed: int) -> None:
    """The landing files, generated once per size and seed (the generator is deterministic)."""
    stamp = work / "data" / f".generated-{customers}-{seed}"
    if stamp.exists():
        return
    shutil.rmtree(work / "data", ignore_errors=True)
    run_measured([*CDP, "generate", "--customers", str(customers), "--seed", str(seed), "--out", str(work / "data")],
                 work / "generate.log", "generating the data")
    stamp.touch()


def fresh(work: Path) -> None:
    for stale in ("lakehouse", "checkpoints", "reports", "mlruns", "mlflow.db", "floor"):
        target = work / stale
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)


def run_once(work: Path, name: str, overrides: list[str]) -> dict:
    """`cdp run --json` in a fresh process: the run document, the JVM's peak resident set (MB) and the load."""
    log = work / f"{name}.log"
    extra = [a for kv in overrides for a in ("--set", kv)]
    text, peak_mb = run_measured([*CDP, "run", "--json", *paths(work), *extra], log, f"the {name} run")
    document = json.loads(text[text.index("{\n"):])
    return {**document, "jvm_peak_mb": peak_mb, "load": os.getloadavg()[0]}


# ------------------------------------------------------------------------------------------- the floor
def floor(landing: Path, out: Path, overrides: list[str]) -> None:
    """Every landing file read once and written once to its own Delta table; prints one JSON line."""
    sys.path.insert(0, str(ROOT))
    from cdp.config import load_settings
    from cdp.spark import build_spark

    settings = load_settings("local", [f"paths.lakehouse={out}", f"paths.checkpoints={out}/_checkpoints", *overrides])
    spark = build_spark(settings, "cdp-floor")
    files = sorted(p for p in landing.rglob("*") if p.is_file() and p.suffix in (".csv", ".jsonl", ".parquet"))
    targets, started = [out / f.parent.name / f.stem for f in files], time.monotonic()
    for f, target in zip(files, targets, strict=True):
        if f.suffix == ".csv":
            df = spark.read.option("header", True).csv(str(f))
        elif f.suffix == ".jsonl":
            df = spark.read.text(str(f))
        else:
            df = spark.read.parquet(str(f))
        df.write.format("delta").mode("overwrite").save(str(target))
    seconds = time.monotonic() - started   # the rows written are read from the commits after the clock stops
    rows = sum(int(spark.sql(f"DESCRIBE HISTORY delta.`{t}` LIMIT 1").first()["operationMetrics"]["numOutputRows"])
               for t in targets)
    print(json.dumps({"floor_seconds": round(seconds, 3), "files": len(files), "rows": rows}))
    spark.stop()


def measure_floor(work: Path, overrides: list[str]) -> dict:
    text, peak_mb = run_measured([sys.executable, str(Path(__file__).resolve()), "--floor",
                                  str(work / "data" / "landing"), str(work / "floor"), *overrides],
                                 work / "floor.log", "the write-once floor")
    line = next(line for line in reversed(text.splitlines()) if line.startswith('{"floor_seconds"'))
    return {**json.loads(line), "jvm_peak_mb": peak_mb}


# ------------------------------------------------------------------------------------------- the report
def total(doc: dict) -> float:
    return sum(s["seconds"] or 0 for s in doc["steps"])


def _n(value, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def quarantine_by_stage(work: Path) -> dict[str, int]:
    from deltalake import DeltaTable

    frame = DeltaTable(str(work / "lakehouse" / "quarantine" / "records")).to_pandas(columns=["stage"])
    return {str(k): int(v) for k, v in frame["stage"].value_counts().items()}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (done.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def previous_figures(report: Path) -> dict:
    """{customers: {step: seconds}} the section held before this run (empty the first time)."""
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    found = FIGURES.search(text)
    return json.loads(found.group(1)) if found else {}


def slower_steps(figures: dict, before: dict) -> list[str]:
    lines = []
    for size, steps in figures.items():
        for step, seconds in steps.items():
            was = before.get(size, {}).get(step)
            if was and seconds > was * SLOWER and seconds - was > NOISE_SECONDS:
                lines.append(f"{step} at {int(size):,} customers: {seconds:,.1f} s, was {was:,.1f} s "
                             f"(+{100 * (seconds / was - 1):.0f} %)")
    return lines


def size_table(size: int, r: dict) -> list[str]:
    first, again = r["first"], r.get("second")
    later = {s["step"]: s for s in again["steps"]} if again else {}
    head = "| step | status | s | rows in | rows out | rows/s | Spark jobs | stages | JVM peak MB | Python peak MB |"
    rule = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if again:
        head, rule = head + " day two s | day two jobs |", rule + " ---: | ---: |"
    lines = [f"### {size:,} customers", "", head, rule]
    for s in first["steps"]:
        seconds = s["seconds"] or 0
        rate = s["rows_in"] / seconds if seconds and s["rows_in"] else None
        row = (f"| {s['step']} | {s['status']} | {seconds:,.1f} | {s['rows_in']:,} | {s['rows_out']:,} | {_n(rate)} | "
               f"{_n(s.get('spark_jobs'))} | {_n(s.get('spark_stages'))} | {_n(s.get('jvm_peak_mb'))} | "
               f"{_n(s.get('python_peak_mb'))} |")
        if again:
            d = later.get(s["step"], {})
            row += f" {_n(d.get('seconds'), 1)} | {_n(d.get('spark_jobs'))} |"
        lines.append(row)
    if r.get("settings"):
        lines += ["", "Settings besides conf/local.yaml: " + ", ".join(f"`{kv}`" for kv in r["settings"]) + "."]
    lines += ["", "Quarantined: " + (", ".join(f"{n:,} rows at {stage}" for stage, n in sorted(r["quarantine"].items()))
                                      or "nothing") + f". Load average when the run ended: {first['load']:.1f}."]
    return lines


def section(results: dict[int, dict], args, started_load: float, before: dict) -> tuple[str, list[str]]:
    sizes = sorted(results)
    figures = {str(n): {s["step"]: s["seconds"] for s in r["first"]["steps"] if s["seconds"] is not None}
               for n, r in results.items()}
    slower = slower_steps(figures, before)
    lines = [
        f"## The whole pipeline at {', '.join(f'{n:,}' for n in sizes)} customers, against Spark's write-once floor",
        "",
        f"`python jobs/bench_pipeline.py {args.command}` ({machine()}; load average {started_load:.1f} when it "
        "started; each size's commit and load below). Per size `cdp generate --customers N "
        f"--seed {args.seed}` (the default 0.2 % hostile rows), `cdp run` on an empty lakehouse in a fresh process "
        "(conf/local.yaml: local[*], a 4 GiB driver), then the floor in another fresh process: each landing file "
        "read once and written once to Delta with the same settings (CSV with its header, JSON lines as text, "
        "Parquet as is), nothing else. Step seconds and the floor exclude the JVM's start. Spark jobs and stages "
        "are the driver's counters; peaks are the resident sets' high-water marks while the step ran (cdp.costs).",
        "",
        "| customers | landing rows | run s | floor s | run / floor | Spark jobs | stages | JVM peak MB | status | "
        "commit | load at start |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for n in sizes:
        r = results[n]
        first, fl = r["first"], r["floor"]
        jobs = sum(s.get("spark_jobs") or 0 for s in first["steps"])
        stages = sum(s.get("spark_stages") or 0 for s in first["steps"])
        lines.append(f"| {n:,} | {fl['rows']:,} | {total(first):,.0f} | {fl['floor_seconds']:,.0f} | "
                     f"{total(first) / fl['floor_seconds']:.1f}x | {jobs:,} | {stages:,} | {first['jvm_peak_mb']:,.0f} | "
                     f"{first['status']} | {r.get('commit', '')} | {_n(r.get('load_started'), 1)} |")
    if len(sizes) >= 2:
        steps = [s["step"] for s in results[sizes[0]]["first"]["steps"]]
        lines += ["", "Scaling exponent of each step (b in time ~ customers^b; least squares over the sizes; "
                  f"above {EXPONENT} grows faster than the target allows):", "",
                  "| step | " + " | ".join(f"{n:,}" for n in sizes) + " | exponent |",
                  "| --- | " + " | ".join("---:" for _ in sizes) + " | ---: |"]
        for step in steps:
            secs = [figures[str(n)].get(step) for n in sizes]
            if all(secs):
                lines.append(f"| {step} | " + " | ".join(f"{s:,.1f}" for s in secs) +
                             f" | {scaling_exponent(sizes, secs):.2f} |")
    for n in sizes:
        lines += ["", *size_table(n, results[n])]
    lines += ["", "Targets (issue #28):", ""]
    for n in sizes:
        ratio = total(results[n]["first"]) / results[n]["floor"]["floor_seconds"]
        goal = FLOOR_RATIO_300K if n >= 300_000 else (FLOOR_RATIO_DEMO if n <= 10_000 else None)
        if goal:
            lines.append(f"- {n:,} customers: the run is {ratio:.1f}x the floor, the target at most {goal:.0f}x: "
                         f"**{'met' if ratio <= goal else 'not met'}**.")
    if {100_000, 300_000} <= set(sizes):
        fast = [(step, scaling_exponent([100_000, 300_000], [figures["100000"][step], figures["300000"][step]]))
                for step in figures["100000"] if figures["100000"][step] and figures["300000"].get(step)]
        over = [f"{s} ({b:.2f})" for s, b in fast if b > EXPONENT]
        lines.append(f"- no step grows faster than n^{EXPONENT} from 100k to 300k: "
                     f"**{'met' if not over else 'not met: ' + ', '.join(over)}**.")
    else:
        lines.append("- the exponent target needs the 100k and 300k sizes in one run (not run this time).")
    if slower:
        lines += ["", "Slower than the figures this section held before (more than 20 %):", "",
                  *(f"- {line}" for line in slower)]
    lines += ["", f"<!-- figures: {json.dumps({**before, **figures}, sort_keys=True)} -->"]
    return "\n".join(lines), slower


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "--floor":
        floor(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", default="10000,100000,300000", help="sizes, comma-separated")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", default=str(ROOT / "bench_data" / "pipeline"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--day-two", default=None, help="sizes that also run a second time with nothing new "
                                                     "(default: the smallest of --customers; 0 for none)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="a setting for the runs and the floor alike, e.g. spark.conf.spark.driver.memory=12g")
    ap.add_argument("--reuse", default="", help="sizes measured by an earlier invocation (their result.json) to "
                                                 "report beside these")
    args = ap.parse_args()
    args.command = " ".join(sys.argv[1:]) or "(defaults)"
    started, load = time.monotonic(), os.getloadavg()[0]
    sizes = sorted(int(n) for n in args.customers.split(","))
    day_two = {int(n) for n in args.day_two.split(",")} if args.day_two else {sizes[0]}
    before = previous_figures(Path(args.report))
    results: dict[int, dict] = {}
    for n in sorted(int(n) for n in args.reuse.split(",") if n):
        kept = Path(args.work) / str(n) / "result.json"
        if not kept.exists():
            print(f"error: no figures kept for {n:,} customers ({kept}); measure it with --customers {n}",
                  file=sys.stderr)
            return 2
        results[n] = json.loads(kept.read_text(encoding="utf-8"))
    for n in sizes:
        work = Path(args.work) / str(n)
        work.mkdir(parents=True, exist_ok=True)
        load_started, measured = os.getloadavg()[0], commit()   # before the run: a commit made during it is not it
        generated(work, n, args.seed)
        fresh(work)
        first = run_once(work, "first", args.overrides)
        print(f"{n:,} customers: {first['status']} in {total(first):,.0f} s", flush=True)
        result = {"first": first, "quarantine": quarantine_by_stage(work), "commit": measured,
                  "load_started": load_started, "settings": args.overrides}
        if n in day_two:
            result["second"] = run_once(work, "second", args.overrides)
        result["floor"] = measure_floor(work, args.overrides)
        print(f"{n:,} customers: floor {result['floor']['floor_seconds']:,.0f} s", flush=True)
        (work / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        results[n] = result
    text, slower = section(results, args, load, before)
    code = publish(args.report, SECTION, text, started)
    for line in slower:
        print(f"slower: {line}")
    failed = [s for r in results.values() for k in ("first", "second") if k in r
              for s in r[k]["steps"] if s["status"] == "failed"]
    return 1 if failed else code


if __name__ == "__main__":
    raise SystemExit(main())
