"""Churn on public data (`make bench`): the CDNOW sample the `lifetimes` package ships, as an orders-only company
would run it (conf/examples/orders_only and the CLI, nothing else), backtested: calibrated up to 1997-09-30,
judged on whether each customer bought again by 1998-06-30; written to docs/benchmarks.md.

    python jobs/bench_cdnow.py [--data sample|master] [--work bench_data/cdnow] [--report docs/benchmarks.md]

1. The CDNOW file (customer id, the sample's index, yyyymmdd, CDs, dollars; the master file has no index) is
   written as the orders-only source's CSV (customer_id, order_id, ordered_at, amount), every order in it: the
   backtest date, not the file, keeps the holdout out of sight.
2. A company folder as conf/examples/orders_only/README.md lays it out (a copy of conf/ with the example's files
   over it), and `cdp run --conf-dir <folder>/conf --set paths.*=<folder>/... --set mlflow.*=<folder>/...
   --as-of 1997-09-30` in a fresh process; twice, in two folders, to check that the same input gives the same
   scores.
3. Churned: no purchase from 1997-10-01 to 1998-06-30 (the 39-week holdout of Fader, Hardie and Lee). On the
   customers who bought by 1997-09-30: how many have a churn score and a value, and the ROC-AUC of
   gold.churn_scores.churn_probability against that of BG/NBD's expected purchases (gold.customer_value,
   negated: fewer expected purchases, likelier to churn). The tables are read with delta-rs, the customer
   number from gold.customers.custom_attributes.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench_report import machine, publish

ROOT = Path(__file__).resolve().parents[1]
CDP = [sys.executable, "-m", "cdp.cli"]
AS_OF, HOLDOUT_END = date(1997, 9, 30), date(1998, 6, 30)
FILES = {"sample": "CDNOW_sample.txt", "master": "CDNOW_master.txt"}
TABLES = ("gold.customers", "gold.churn_scores", "gold.customer_value", "gold.churn_features")
NEEDED = ("identity", "churn_features", "churn_model", "churn_scores", "customer_value")   # the steps read here


def cdnow_orders(name: str) -> list[tuple[str, date, float]]:
    """(customer id, day, dollars) per row of the lifetimes package's CDNOW file (read by path: lifetimes itself
    does not import on numpy 2)."""
    folder = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"
    rows = []
    for line in (folder / FILES[name]).read_text().splitlines():
        fields = line.split()
        if not fields or not fields[-3].isdigit():     # the master file's header
            continue
        rows.append((fields[0], datetime.strptime(fields[-3], "%Y%m%d").date(), float(fields[-1])))
    return rows


def write_landing(orders: list[tuple[str, date, float]], path: Path) -> None:
    """The orders-only source's export: customer_id, order_id, ordered_at (ISO, UTC), amount."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "order_id", "ordered_at", "amount"])
        for i, (customer, day, amount) in enumerate(orders):
            w.writerow([customer, f"{customer}-{i:06d}", f"{day.isoformat()}T00:00:00Z", f"{amount:.2f}"])


def company_folder(base: Path, orders: list[tuple[str, date, float]]) -> Path:
    """<base>/conf (conf/ with the orders-only example over it) and <base>/data/landing/orders/cdnow.csv."""
    if base.exists():
        shutil.rmtree(base)
    conf = base / "conf"
    shutil.copytree(ROOT / "conf", conf, ignore=shutil.ignore_patterns("examples"))
    shutil.rmtree(conf / "sources")
    example = ROOT / "conf" / "examples" / "orders_only"
    shutil.copytree(example, conf, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    write_landing(orders, base / "data" / "landing" / "orders" / "cdnow.csv")
    return conf


def command(base: Path, conf: Path) -> list[str]:
    sets = {"paths.landing": base / "data" / "landing", "paths.ground_truth": base / "data" / "ground_truth",
            "paths.lakehouse": base / "lakehouse", "paths.checkpoints": base / "lakehouse" / "_checkpoints",
            "paths.reports": base / "reports", "mlflow.tracking_uri": base / "mlflow.db",
            "mlflow.artifact_root": base / "mlruns"}
    return ["run", "--conf-dir", str(conf), *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")],
            "--as-of", AS_OF.isoformat()]


def run_cli(base: Path, conf: Path) -> tuple[float, str, list[str]]:
    """`cdp run ... --as-of` in a fresh process: (seconds, its output, the steps that did not succeed), the output
    kept in <base>/run.log. A failed step the benchmark does not read (the report) is named, not fatal."""
    log = base / "run.log"
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run([*CDP, *command(base, conf)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**os.environ, "COLUMNS": "160"})
    seconds, output = time.monotonic() - start, log.read_text()
    status = dict(re.findall(r"^\W*(\w+)\s+\W\s+(succeeded|failed|skipped|not_applicable)\b", output, re.M))
    unfinished = [step for step, s in status.items() if s != "succeeded"]
    if proc.returncode != 0 and (not status or any(status.get(step) != "succeeded" for step in NEEDED)):
        raise SystemExit(f"error: `cdp run` failed (exit {proc.returncode}); see {log}")
    return seconds, output, unfinished


def read_tables(base: Path) -> dict:
    from deltalake import DeltaTable

    out = {}
    for name in TABLES:
        layer, _, table = name.partition(".")
        out[name] = DeltaTable(str(base / "lakehouse" / layer / table)).to_pandas()
    return out


def roc_auc(score, churned) -> float:
    """ROC-AUC of `score` (higher: likelier to churn) against 0/1 `churned`, ties counted half (Mann-Whitney)."""
    import pandas as pd

    ranks = pd.Series(list(score)).rank(method="average")
    labels = pd.Series(list(churned)).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def judge(orders: list[tuple[str, date, float]], tables: dict) -> dict:
    """The holdout's verdict on the run's scores and values, on the customers who bought by AS_OF."""
    import pandas as pd

    frame = pd.DataFrame(orders, columns=["number", "day", "amount"])
    before = set(frame.loc[frame["day"] <= AS_OF, "number"])
    again = set(frame.loc[(frame["day"] > AS_OF) & (frame["day"] <= HOLDOUT_END), "number"])
    customers = tables["gold.customers"]
    numbers = customers.assign(number=customers["custom_attributes"].map(lambda m: dict(m)["customer_number"]))
    scores = tables["gold.churn_scores"].merge(numbers[["customer_id", "number"]], on="customer_id")
    value = tables["gold.customer_value"].merge(numbers[["customer_id", "number"]], on="customer_id")
    both = scores.merge(value[["number", "expected_purchases"]], on="number")
    both = both[both["number"].isin(before)]
    churned = ~both["number"].isin(again)
    features = tables["gold.churn_features"]
    return {"customers": len(before), "scored": int(scores["number"].isin(before).sum()),
            "valued": int(value["number"].isin(before).sum()), "judged": len(both), "churn_rate": float(churned.mean()),
            "model_auc": roc_auc(both["churn_probability"], churned),
            "bgnbd_auc": roc_auc(-both["expected_purchases"], churned),
            "bands": scores["risk_band"].value_counts().to_dict(),
            "snapshots": sorted(str(d) for d in features["snapshot_date"].unique()), "training_rows": len(features),
            "as_of": sorted(str(d) for d in scores["as_of"].unique()),
            "scores": dict(zip(scores["number"], scores["churn_probability"], strict=True))}


def training_lines(output: str) -> list[str]:
    """The churn_model step's own lines: each model's held-out figures and the one registered."""
    return [line.strip() for line in output.splitlines()
            if re.match(r"\s+(gbt|logistic_regression): ROC-AUC|\s+recency alone|\s+registered ", line)]


def report(data: str, first: dict, second: dict, seconds: list[float], lines: list[str], example: str) -> str:
    same = first["scores"] == second["scores"]
    beats = first["model_auc"] >= first["bgnbd_auc"]
    bands = ", ".join(f"{n:,} {band}" for band, n in sorted(first["bands"].items()))
    rows = [
        f"## Churn on public data: CDNOW ({data}), orders only, backtested",
        "",
        f"Machine: {machine()}. Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `jobs/bench_cdnow.py`: the "
        f"`lifetimes` package's `{FILES[data]}` ({first['customers']:,} customers by {AS_OF}), every order landed as "
        "the orders-only source's CSV, the pipeline run by the CLI alone on a copy of conf/ with "
        "conf/examples/orders_only laid over it:",
        "",
        "```bash",
        f".venv/bin/cdp {' '.join(example)}",
        "```",
        "",
        f"Churned: no purchase from {AS_OF + timedelta(days=1)} to {HOLDOUT_END} (the 39-week holdout). "
        f"Training saw nothing after {AS_OF}: {len(first['snapshots'])} snapshots "
        f"({first['snapshots'][0]} to {first['snapshots'][-1]}, {first['training_rows']:,} rows), the last one's "
        f"churn label ending on {AS_OF}. BG/NBD is the customer_value step's, fitted on the same purchases; its "
        "expected purchases over the next year, negated, are its churn score.",
        "",
        "| customers by as-of | churn scores | values | holdout churn rate | churn model ROC-AUC | BG/NBD -E[purchases] "
        "ROC-AUC | risk bands | same scores on a second run | cdp run (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
        f"| {first['customers']:,} | {first['scored']:,} | {first['valued']:,} | {first['churn_rate']:.1%} "
        f"| **{first['model_auc']:.3f}** | {first['bgnbd_auc']:.3f} | {bands} | {'yes, exactly' if same else 'NO'} "
        f"| {', '.join(f'{s:.0f}' for s in seconds)} |",
        "",
        f"Target: a churn score for every customer ({'met' if first['scored'] == first['customers'] else 'NOT met'}) "
        f"and a ROC-AUC at least BG/NBD's ({'met' if beats else 'NOT met'}: "
        f"{first['model_auc'] - first['bgnbd_auc']:+.3f}). The churn_model step's own report (its held-out "
        "snapshot, time-based split):",
        "",
        *[f"    {line}" for line in lines],
        "",
        f"Reproduce: `python jobs/bench_cdnow.py{'' if data == 'sample' else ' --data ' + data}` (folders under "
        "bench_data/cdnow/).",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(FILES), default="sample")
    ap.add_argument("--work", default=str(ROOT / "bench_data" / "cdnow"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    orders = cdnow_orders(args.data)
    results, seconds, outputs = [], [], []
    for run in ("first", "second"):
        base = Path(args.work).resolve() / args.data / run
        conf = company_folder(base, orders)
        print(f"{run} run: cdp run --as-of {AS_OF} in {base} ...", flush=True)
        took, output, unfinished = run_cli(base, conf)
        if unfinished:
            print(f"  warning: step(s) {', '.join(unfinished)} did not succeed (not read here); see {base / 'run.log'}")
        seconds.append(took)
        outputs.append(output)
        results.append(judge(orders, read_tables(base)))
        r = results[-1]
        print(f"  {took:.0f}s; {r['scored']:,} of {r['customers']:,} scored; ROC-AUC {r['model_auc']:.3f} "
              f"(BG/NBD {r['bgnbd_auc']:.3f})", flush=True)
    example = ["run", "--conf-dir", "<folder>/conf", "--set", "paths.lakehouse=<folder>/lakehouse", "...",
               "--as-of", AS_OF.isoformat()]
    name = "cdnow" if args.data == "sample" else f"cdnow_{args.data}"
    return publish(args.report, name, report(args.data, results[0], results[1], seconds, training_lines(outputs[0]),
                                             example), t0)


if __name__ == "__main__":
    sys.exit(main())
