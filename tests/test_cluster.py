"""The pipeline on a real multi-node Spark cluster: a standalone master and two workers (1 core each) on loopback,
started from the classes shipped with pyspark, the pipeline's distributed steps (CLUSTER_STEPS) submitted with
`cdp.submit.spark_submit_command` (the command docs/cluster.md documents), and every gold table
they write compared with the in-process local run of the `pipeline_demo` fixture on the same landing files and
run id.

The cluster's processes are started in their own process groups and killed whatever the outcome; their logs
(master, workers, executors, driver) are in the test's tmp folder and their tails are printed on failure."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import test_overrides
from lake_compare import EXCLUDED, FLOAT_SUMS_SEEN, GOLD, JSON_COLUMNS, LOOSE, compare

from cdp.config import load_settings
from cdp.io import Lakehouse
from cdp.quality import load_contract
from cdp.submit import pyspark_home, spark_submit_command
from cdp.tables import PIPELINE_RUNS

WORKERS = 2
# The steps whose distributed behaviour is at risk: shuffles and MERGEs (bronze, silver), joins and the graph
# (identity), windows (journeys, profiles and its SCD2 MERGE, churn features), the model fit on executors
# (churn_model, churn_scores) and a pandas UDF (customer_value). The others read these tables and write small ones.
CLUSTER_STEPS = ["bronze", "silver", "identity", "journeys", "profiles", "churn_features", "churn_model",
                 "churn_scores", "customer_value"]
START_TIMEOUT = 120     # seconds for the master and both workers to come up
SUBMIT_TIMEOUT = 900    # seconds for the whole pipeline on the cluster


@dataclass
class Standalone:
    root: Path
    master_url: str
    webui: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)   # the daemons and the submit, each its own group
    logs: list[Path] = field(default_factory=list)

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.webui}/json/", timeout=5) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def tails(self, lines: int = 40) -> str:
        """The last lines of every log: the daemons', the driver's and each executor's stderr."""
        executors = sorted((self.root / "work").glob("*/app-*/*/stderr"))
        out = []
        for log in [*self.logs, *executors]:
            with suppress(OSError):
                text = log.read_text(encoding="utf-8", errors="replace").splitlines()
                out.append(f"----- {log} (last {lines} of {len(text)} lines)\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cluster: Standalone, name: str, argv: list[str]) -> subprocess.Popen:
    log = cluster.root / f"{name}.log"
    cluster.logs.append(log)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=cluster.env,
                                cwd=cluster.root, start_new_session=True)
    cluster.procs.append(proc)   # start_new_session: its pid is its group's id; executors and Python workers join it
    return proc


def _alive(groups: list[int], marks: tuple[str, ...] = ()) -> list[str]:
    """`ps` lines of the processes still in these process groups, or naming one of `marks` (the cluster's folder,
    its master URL) in their command line wherever they are."""
    ps = subprocess.run(["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    return [line.strip()[:300] for line in ps.splitlines()
            if int(line.split()[1]) in groups or any(m in line for m in marks)]


def _stop(procs: list[subprocess.Popen], marks: tuple[str, ...] = (), grace: float = 20) -> list[str]:
    """SIGTERM the process group of each of procs (a worker stops its executors), SIGKILL what is left after `grace`
    seconds; returns the `ps` lines of anything still alive (nothing, normally)."""
    groups = [p.pid for p in procs]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        for pgid in groups:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while True:
            for p in procs:
                p.poll()   # reap our own children: an unreaped one stays in `ps` as <defunct>
            if not _alive(groups, marks) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not _alive(groups, marks):
            return []
    return _alive(groups, marks)


def _master_bound(log: Path) -> tuple[str, str] | None:
    """(master URL, web UI address) once the master's log shows both bound."""
    with suppress(OSError):
        text = log.read_text(encoding="utf-8", errors="replace")
        url = re.search(r"Starting Spark master at (spark://\S+)", text)
        ui = re.search(r"Successfully started service 'MasterUI' on port (\d+)", text)
        if url and ui:
            return url.group(1), f"http://127.0.0.1:{ui.group(1)}"
    return None


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A Spark standalone master and WORKERS workers (1 core, 2g each) on 127.0.0.1, free ports, stopped at the end."""
    root = tmp_path_factory.mktemp("standalone")
    home = pyspark_home()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "PYSPARK_SUBMIT"))}
    env.update(SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_DIRS=str(root / "local"),
               SPARK_DAEMON_MEMORY="512m")   # the master's and workers' own heap (default 1g each)
    env["SPARK_MASTER_OPTS"] = "-Dspark.master.rest.enabled=false"   # its REST server would take the fixed port 6066
    port, webui_port = _free_port(), _free_port()
    cluster = Standalone(root, f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{webui_port}", env)
    spark_class = str(home / "bin" / "spark-class")
    deadline = time.monotonic() + START_TIMEOUT
    try:
        master = _start(cluster, "master", [spark_class, "org.apache.spark.deploy.master.Master", "--host",
                                            "127.0.0.1", "--port", str(port), "--webui-port", str(webui_port)])
        # a port taken meanwhile makes Spark bind the next one: the master's log says which
        while (not (bound := _master_bound(root / "master.log")) and master.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.5)
        if not bound:
            raise RuntimeError(f"the standalone master did not start (exit code {master.poll()})\n" + cluster.tails())
        cluster.master_url, cluster.webui = bound
        for i in range(WORKERS):
            work = root / "work" / f"worker-{i}"
            work.mkdir(parents=True)
            _start(cluster, f"worker-{i}", [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                                            "--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
                                            "--webui-port", str(_free_port()), "--work-dir", str(work)])
        alive = None
        while time.monotonic() < deadline:
            with suppress(OSError, ValueError):
                alive = cluster.state().get("aliveworkers")
                if alive == WORKERS:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"the standalone cluster did not come up in {START_TIMEOUT}s (alive workers: {alive})\n"
                               + cluster.tails())
        yield cluster
    finally:
        left = _stop(cluster.procs, (str(root), cluster.master_url))
        assert not left, "processes of the standalone cluster survived SIGKILL:\n" + "\n".join(left)


def _submit(cluster: Standalone, argv: list[str]) -> subprocess.CompletedProcess:
    log = cluster.root / "driver.log"
    cluster.logs.append(log)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=cluster.env,
                                cwd=cluster.root, start_new_session=True)
        cluster.procs.append(proc)
        try:
            proc.wait(timeout=SUBMIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            _stop([proc], grace=5)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode)


def test_the_columns_the_comparison_treats_apart_exist():
    # a renamed column must fail here, not make the comparison fail for a column that is gone (or skip nothing)
    settings = load_settings("local")
    columns = {f"{t.qualified}.{c}" for t in GOLD for c in load_contract(settings, t).column_names}
    assert sorted(c for c in {*EXCLUDED, *JSON_COLUMNS, *LOOSE, *FLOAT_SUMS_SEEN} if c not in columns) == []


def _other_runs(lake: Lakehouse, run_id: str) -> list[str]:
    """Runs other than `run_id` recorded in the lakehouse (audit.pipeline_runs)."""
    if not lake.exists(PIPELINE_RUNS):
        return []
    return sorted({r.run_id for r in lake.read(PIPELINE_RUNS).select("run_id").distinct().collect()} - {run_id})


@pytest.mark.slow
@pytest.mark.process
def test_the_pipeline_on_a_standalone_cluster_writes_the_gold_tables_of_a_local_run(standalone, pipeline_demo, spark,
                                                                                    conf_dir):
    settings, local, ctx = pipeline_demo
    assert _other_runs(local, ctx.run_id) == []   # the demo is read-only (tests/conftest.py)
    run = standalone.root / "run"
    overrides = [
        *test_overrides(run),      # the suite's settings, every output under run/ ...
        f"paths.landing={settings.path(settings.paths.landing)}",            # ... reading the local run's landing
        f"paths.ground_truth={settings.path(settings.paths.ground_truth)}",  # (read only) and ground truth
        "catalog.database=null",   # registering names needs a shared metastore: the local run's is in-process
        # the local run has 1 partition: the results must not depend on it
        f"spark.conf.spark.sql.shuffle.partitions={WORKERS}",
        f"spark.conf.spark.default.parallelism={WORKERS}",
        "spark.conf.spark.driver.memory=1g",   # the executors do the work
    ]
    job_args = ["--conf-dir", str(conf_dir), "--run-id", ctx.run_id, "--steps", ",".join(CLUSTER_STEPS),
                *(a for o in overrides for a in ("--set", o))]
    argv = spark_submit_command(load_settings("local", overrides, conf_dir), standalone.master_url, job_args,
                                extra_conf={"spark.executor.memory": "1g", "spark.executor.cores": 1,
                                            "spark.cores.max": WORKERS})
    try:
        t0 = time.monotonic()
        done = _submit(standalone, argv)
        print(f"pipeline on the standalone cluster: exit {done.returncode} in {time.monotonic() - t0:.0f}s")
        assert done.returncode == 0, f"spark-submit exited {done.returncode}"
        # it ran on the cluster (the settings' spark.master=local[2] is not used under spark-submit): one
        # application, with an executor on each worker
        apps = standalone.state()["completedapps"]
        assert [a["name"] for a in apps] == [settings.spark.app_name], apps
        assert len(list((standalone.root / "work").glob(f"*/{apps[0]['id']}/*/stderr"))) == WORKERS
        t0 = time.monotonic()
        cluster = Lakehouse(spark, str(run / "lakehouse"))
        written = [t for t in GOLD if cluster.exists(t)]
        assert {"gold.identity_map", "gold.customer_journey", "gold.customer_profile_history", "gold.churn_scores",
                "gold.customer_value"} <= {t.qualified for t in written}
        differ = compare(local, cluster, written)
        print(f"{len(written)} gold tables compared in {time.monotonic() - t0:.0f}s")
        assert not differ, "gold tables differ between the local and the cluster run:\n" + "\n".join(
            f"{t}: {d}" for t, d in differ.items())
    except BaseException:
        print(standalone.tails())
        raise
