"""Crash safety and concurrent runs with real processes: `cdp run` killed with SIGKILL at kill points on the write
path (cdp.faults) and re-run with `cdp run --resume` ends with the tables of an uninterrupted run; two `cdp run`
started while another holds the lakehouse stops with one line naming it, and the lakehouse stays whole.

The uninterrupted run is the `pipeline_demo` fixture (the same landing files, the same run id). The killed runs go
one after the other: each resumes the run the previous one left half done and is killed at the next kill point,
so five kills (one per write primitive) cost about one run of the steps up to profiles and six JVM starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import test_overrides
from lake_compare import EXCLUDED, compare

from cdp.io import Lakehouse
from cdp.lock import LOCK_FILE
from cdp.tables import INGEST_LOG, REGISTERED, bronze

# One kill point per distinct write primitive, and the killed runs plan the steps up to the last of them (the
# steps after profiles write with the same primitives: churn_scores and the others overwrite like journeys).
STEPS = ["bronze", "silver", "reconcile", "identity", "journeys", "profiles"]
# (step, kill point): `during` dies while Spark writes the table (files half written, no commit), `after` right after
# the table's commit, before the step's next write.
KILL_POINTS = [
    ("bronze", "during:bronze.ecommerce_orders"),        # replaceWhere append; other sources' tables commit meanwhile
    ("silver", "during:silver.interactions"),            # mid-MERGE
    ("identity", "after:gold.identity_map"),             # a commit between two tables of a step: customers not yet
    ("journeys", "during:gold.customer_journey"),        # a plain overwrite
    ("profiles", "during:gold.customer_profile_history"),   # the SCD2 MERGE
]
RUN_TIMEOUT = 600
# Beyond lake_compare.EXCLUDED (gold columns stamped with the run's start): what a re-run stamps with its own clock.
REPLAYED = "stamped with the wall-clock time of the process that (re)wrote the row"
CRASH_EXCLUDED = {
    **EXCLUDED,
    "quarantine.records.quarantined_at": REPLAYED,
}
LINEAGE_CLOCK = "_ingested_at"   # bronze and silver lineage: when the file was landed (the landing run's start)


def _cdp(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """`python -m cdp <args>` in its own process group (a kill point kills the group), output to `log`."""
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "cdp", *args], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise
    return subprocess.CompletedProcess(args, proc.returncode, log.read_text(errors="replace"))


def _args(conf_dir: Path, overrides: list[str], *extra: str) -> list[str]:
    return ["run", "--conf-dir", str(conf_dir), *extra, *(a for o in overrides for a in ("--set", o))]


@pytest.fixture(scope="module")
def demo_landing(pipeline_demo):
    settings, lake, ctx = pipeline_demo
    return settings, lake, ctx, [f"paths.landing={settings.path(settings.paths.landing)}",
                                 f"paths.ground_truth={settings.path(settings.paths.ground_truth)}",
                                 "catalog.database=null"]


def _tables(lake: Lakehouse) -> list:
    sources = sorted(p.name for p in Path(lake.root, "bronze").iterdir() if (p / "_delta_log").exists())
    return [*(bronze(s) for s in sources),
            *(t for t in REGISTERED if t.layer in ("silver", "gold", "quarantine") and lake.exists(t))]


@pytest.mark.slow
@pytest.mark.process
def test_runs_killed_at_each_write_primitive_and_resumed_end_with_the_tables_of_an_uninterrupted_run(demo_landing, conf_dir,
                                                                                          spark, tmp_path):
    settings, reference, ctx, paths = demo_landing
    overrides = [*test_overrides(tmp_path), *paths]
    kill_log = tmp_path / "kills.log"
    env = {**os.environ, "CDP_KILL_LOG": str(kill_log)}
    t0 = time.monotonic()
    for n, (step, point) in enumerate(KILL_POINTS):
        which = ["--steps", ",".join(STEPS)] if n == 0 else ["--resume"]
        done = _cdp(_args(conf_dir, overrides, "--run-id", ctx.run_id, *which), {**env, "CDP_KILL_AT": point},
                    tmp_path / f"killed-{n}.log")
        assert done.returncode == -9, f"not killed at {point} (exit {done.returncode}):\n{done.stdout[-3000:]}"
        assert kill_log.read_text().splitlines()[-1].startswith(f"{point}#1 "), kill_log.read_text()
        if n:
            assert "took over the lakehouse lock from run " + ctx.run_id in done.stdout
        print(f"killed at {point} ({step}) after {time.monotonic() - t0:.0f}s")
    done = _cdp(_args(conf_dir, overrides, "--run-id", ctx.run_id, "--resume"), env, tmp_path / "resumed.log")
    assert done.returncode == 0, done.stdout[-3000:]
    print(f"resumed to the end after {time.monotonic() - t0:.0f}s")

    crashed = Lakehouse(spark, str(tmp_path / "lakehouse"))
    tables = _tables(crashed)
    written = {t.qualified for t in tables}
    assert {"bronze.ecommerce_orders", "silver.interactions", "gold.identity_map", "gold.customers",
            "gold.customer_journey", "gold.customer_profile", "gold.customer_profile_history",
            "quarantine.records"} <= written
    excluded = {**CRASH_EXCLUDED, **{f"{t.qualified}.{LINEAGE_CLOCK}": REPLAYED for t in tables
                                     if LINEAGE_CLOCK in crashed.read(t).columns}}
    differ = compare(reference, crashed, tables, excluded)
    assert not differ, "tables differ from the uninterrupted run:\n" + "\n".join(f"{t}: {d}" for t, d in differ.items())
    # every landing file landed exactly once
    files = crashed.read(INGEST_LOG).groupBy("source", "file_path").count()
    assert files.where("count > 1").count() == 0
    assert files.count() == reference.read(INGEST_LOG).count()
    print(f"{len(tables)} tables equal to the uninterrupted run's after {len(KILL_POINTS)} kills")


@pytest.mark.slow
@pytest.mark.process
def test_a_run_started_while_another_holds_the_lakehouse_stops_naming_it_and_leaves_it_whole(demo_landing, conf_dir,
                                                                                             spark, tmp_path):
    # Runs racing for the lock at the same instant: tests/test_lock.py (exactly one of four processes holds it).
    settings, reference, ctx, paths = demo_landing
    overrides = [*test_overrides(tmp_path), *paths]
    lock = tmp_path / "lakehouse" / LOCK_FILE
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([sys.executable, "-m", "cdp", *_args(conf_dir, overrides, "--run-id", "first-run",
                                                                        "--steps", "bronze")],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while not (lock.exists() and "first-run" in lock.read_text()) and first.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            t0 = time.monotonic()
            second = _cdp(_args(conf_dir, overrides, "--run-id", "second-run", "--steps", "bronze"), dict(os.environ),
                          tmp_path / "second.log")
            stopped_in = time.monotonic() - t0
            assert first.poll() is None, "the first run ended before the second started: nothing was shown"
        finally:
            assert first.wait(timeout=RUN_TIMEOUT) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert second.returncode == 2, second.stdout
    error = [line for line in second.stdout.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and re.fullmatch(
        rf"error: the lakehouse {tmp_path}/lakehouse is in use by run first-run \(cdp run, pid {first.pid} on host "
        r"\S+, since .* UTC, lease renewed \d+s ago\); wait for it to end, or give --wait SECONDS to wait for it",
        error[0]), second.stdout
    assert "Traceback" not in second.stdout and stopped_in < 30   # before it started a JVM
    # the lakehouse is the first run's alone: its bronze tables equal the uninterrupted run's, each file landed once
    lake = Lakehouse(spark, str(tmp_path / "lakehouse"))
    tables = [t for t in _tables(lake) if t.layer == "bronze"]
    assert {t.qualified for t in tables} == {t.qualified for t in _tables(reference) if t.layer == "bronze"}
    differ = compare(reference, lake, tables, {f"{t.qualified}.{c}": "the first run's own" for t in tables
                                               for c in (LINEAGE_CLOCK, "_run_id")})
    assert not differ, differ
    assert {r.run_id for r in lake.read(INGEST_LOG).select("run_id").distinct().collect()} == {"first-run"}
    assert not lock.exists()
