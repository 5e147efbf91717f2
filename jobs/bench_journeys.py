"""Journeys and Customer 360 benchmark (`make bench`): time of the journeys, profiles and segments steps from 10k to
100k customers, next to the silver step on the same data; the scaling exponent; written to docs/benchmarks.md.

    python jobs/bench_journeys.py [--dir bench_data/journeys] [--customers 10000,30000,100000]

Per size, once: `cdp generate` into <dir>/<n>/data, then a fresh `cdp run --steps bronze,silver,identity` (silver's
time is read from it); then, with the tables of the new steps removed, `cdp run --steps journeys,profiles,segments`,
timed per step. Each `cdp` is its own process (its own JVM), with the project's local settings.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench_report import customer_size_args, machine, publish, scaling_exponent

ROOT = Path(__file__).resolve().parents[1]
CDP = [sys.executable, "-m", "cdp.cli"]
NEW_STEPS = ("journeys", "profiles", "segments")


def lake_args(base: Path) -> list[str]:
    paths = {"paths.landing": base / "data" / "landing", "paths.ground_truth": base / "data" / "ground_truth",
             "paths.lakehouse": base / "lakehouse", "paths.checkpoints": base / "lakehouse" / "_checkpoints",
             "paths.reports": base / "lakehouse" / "reports", "mlflow.tracking_uri": base / "mlflow.db",
             "mlflow.artifact_root": base / "mlruns"}
    return [x for k, v in paths.items() for x in ("--set", f"{k}={v}")]


def step_seconds(output: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+) done in ([\d.]+)s", output, re.M)}


def run(base: Path, steps: str) -> dict[str, float]:
    log = base / f"run_{steps.replace(',', '_')}.log"
    with open(log, "w") as out:
        proc = subprocess.run([*CDP, "run", "--steps", steps, *lake_args(base)], stdout=out, stderr=subprocess.STDOUT,
                              cwd=ROOT, env={**os.environ, "COLUMNS": "160"})
    if proc.returncode != 0:
        raise SystemExit(f"error: `cdp run --steps {steps}` failed (exit {proc.returncode}); see {log}")
    return step_seconds(log.read_text())


def prepare(base: Path, customers: int) -> float:
    """Generate the data and run bronze, silver and identity once; silver's time (returned) is kept in
    <base>/prepared.txt."""
    if not (base / "data" / "ground_truth" / "persons").is_dir():
        subprocess.run([*CDP, "generate", "--customers", str(customers), "--seed", "7", "--out", str(base / "data"),
                        "--workers", "2"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    prepared = base / "prepared.txt"
    if not prepared.exists():
        before = run(base, "bronze,silver,identity")
        prepared.write_text(str(before["silver"]))
    return float(prepared.read_text())


def reset_new_steps(base: Path) -> None:
    """Remove the tables the new steps write, so each timed run is the first one after identity (an earlier
    run's table versions, history and appended segments would make it a different run)."""
    from cdp.io import Lakehouse
    from cdp.tables import JOURNEY_TABLES, KPI_TABLES, PROFILE_TABLES, UNATTRIBUTED

    lake = Lakehouse(None, str(base / "lakehouse"))   # only its table locations: no Spark session
    for t in (*JOURNEY_TABLES, *PROFILE_TABLES, *KPI_TABLES, UNATTRIBUTED):
        shutil.rmtree(lake.location(t), ignore_errors=True)


def measure(base: Path, customers: int) -> dict:
    silver = prepare(base, customers)
    reset_new_steps(base)
    timed = run(base, ",".join(NEW_STEPS))
    return {"customers": customers, "silver": silver, **{s: timed[s] for s in NEW_STEPS},
            "new_steps": sum(timed[s] for s in NEW_STEPS)}


def report(rows: list[dict]) -> str:
    sizes = [r["customers"] for r in rows]
    b = scaling_exponent(sizes, [r["new_steps"] for r in rows])
    b_silver = scaling_exponent(sizes, [r["silver"] for r in rows])
    lines = [
        "## Journeys, Customer 360 and segments: 10k to 100k customers",
        "",
        f"Machine: {machine()}; local Spark "
        f"with the project's local settings. Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench` "
        "(`jobs/bench_journeys.py`).",
        "",
        "Each size: `cdp generate --customers N --seed 7`, then `cdp run --steps bronze,silver,identity` (silver's "
        "time is from that run), then, with the new steps' tables removed, `cdp run --steps "
        "journeys,profiles,segments` in a fresh process, timed per step (each step reads its inputs, builds, "
        "checks the gold contracts and writes).",
        "",
        "| customers | silver (s) | journeys (s) | profiles (s) | segments (s) | new steps together (s) | new steps / silver |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['customers']:,} | {r['silver']:.0f} | {r['journeys']:.0f} | {r['profiles']:.0f} "
                     f"| {r['segments']:.0f} | {r['new_steps']:.0f} | {r['new_steps'] / r['silver']:.2f} |")
    worst = max(r["new_steps"] / r["silver"] for r in rows)
    lines += [
        "",
        f"Scaling exponent of the new steps together (least squares of log time on log customers): **b = {b:.2f}** "
        f"(target: at most 1.1); silver's on the same sizes: b = {b_silver:.2f}.",
        f"The new steps together take at most **{worst:.2f}x** the silver step's time (target: at most 1.0).",
        "",
        "Reproduce: `python jobs/bench_journeys.py --customers 10000,30000,100000` (data under bench_data/journeys/).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    customer_size_args(ap, ROOT)
    ap.add_argument("--prepare-only", action="store_true",
                    help="only generate the data and time silver (once per size); no report")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    if args.prepare_only:
        for n in sorted(int(c) for c in args.customers.split(",")):
            prepare(Path(args.dir).resolve() / str(n), n)
            print(f"{n:,} customers prepared in {time.monotonic() - t0:.0f}s", flush=True)
        return 0
    rows = []
    for n in sorted(int(c) for c in args.customers.split(",")):
        print(f"{n:,} customers ...", flush=True)
        row = measure(Path(args.dir).resolve() / str(n), n)
        rows.append(row)
        print(f"  silver {row['silver']:.0f}s; journeys {row['journeys']:.0f}s, profiles {row['profiles']:.0f}s, "
              f"segments {row['segments']:.0f}s", flush=True)
    text = report(rows)
    return publish(args.report, "journeys", text, t0)


if __name__ == "__main__":
    sys.exit(main())
