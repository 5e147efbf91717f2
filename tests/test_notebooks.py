"""The notebooks under notebooks/ run top to bottom in a real Jupyter kernel (nbclient, the project virtualenv's
`python3` kernel; one kernel and one JVM for all of them, its namespace reset between notebooks) on the demo
lakehouse, with the cell tagged `parameters` replaced by settings for it: no cell fails, the results each one
shows have rows and agree with the tables, and no output holds a raw email or phone number. The notebooks are
committed with their outputs cleared."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from cdp.config import PROJECT_ROOT
from cdp.tables import (
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    CUSTOMERS,
    IDENTITY_LINKS,
    IDENTITY_MAP,
    IDENTITY_RECORDS,
    NEXT_BEST_ACTION,
)

NOTEBOOKS = PROJECT_ROOT / "notebooks"
# per notebook: the pandas results it shows that must have rows on the demo data, and figures the probe cell
# (appended by the test) prints for the assertions below, as expressions over the notebook's variables
EXPECTED = {
    "customer_360": {
        "results": ("rfm_segments", "funnel", "retention", "satisfaction", "attribution", "segments", "timeline"),
        "figures": {"rfm_customers": "int(rfm_segments['customers'].sum())"},
    },
    # on 60 customers the guards split nothing and no value goes over the cap: the review queue, the capped values
    # and the probabilistic links' probabilities may be empty (the notebook shows them empty)
    "identity_review": {
        "results": ("cluster_sizes", "largest_clusters", "links_by_rule", "links_by_evidence",
                    "group_parts", "cluster_records", "cluster_links", "evaluation", "thresholds"),
        "figures": {"customers": "int(cluster_sizes['clusters'].sum())",
                    "records": "int(cluster_sizes['records'].sum())",
                    "links": "int(links_by_rule['links'].sum())",
                    "explained_records": "int(group_parts['records'].iloc[0])",
                    "explained_customer": "customer_id"},
    },
    "churn_and_actions": {
        "results": ("champion_card", "model_versions", "held_out_metrics", "feature_importances", "risk_bands",
                    "top_drivers", "customer_value", "value_by_band", "action_mix"),
        "figures": {"champion_version": "str(champion.version)",
                    "scored": "int(risk_bands['customers'].sum())",
                    "valued": "int(customer_value['customers'].iloc[0])",
                    "actions": "int(action_mix['customers'].sum())",
                    "at_risk": "at_risk_customers"},
    },
}
# the kernel's own Spark: small (the suite's session and the pipeline's tables are already in this process)
KERNEL_SPARK = [
    "spark.master=local[1]",
    "spark.conf.spark.sql.shuffle.partitions=1",
    "spark.conf.spark.default.parallelism=1",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.driver.memory=1g",
    "spark.conf.spark.sql.codegen.wholeStage=false",
    "spark.conf.spark.sql.codegen.factoryMode=NO_CODEGEN",
    "spark.conf.spark.sql.adaptive.enabled=false",
    "spark.conf.spark.databricks.delta.snapshotPartitions=1",
    "spark.conf.spark.databricks.delta.stats.collect=false",
    "spark.conf.spark.locality.wait=0",
    "spark.log_level=ERROR",
    # a short-lived JVM on small data: the quick (C1) compiler only and one GC thread start and warm up twice as fast
    "spark.conf.spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
]
PARAMETERS = '''\
# parameters injected by tests/test_notebooks.py: the demo lakehouse, a small Spark, this virtualenv's kernel
import sys

assert sys.prefix == {prefix!r}, f"the kernel runs {{sys.executable}}, not the project's virtualenv"
from cdp import build_spark, load_settings
from cdp.io import Lakehouse

settings = load_settings("local", {overrides!r}, {conf_dir!r})
spark = build_spark(settings, jvm_log={jvm_log!r})
lake = Lakehouse.from_settings(spark, settings)'''
PROBE = '''\
import json as _json

print("RESULTS " + _json.dumps({{_n: None if globals().get(_n) is None else len(globals()[_n]) for _n in {results!r}}}))
print("FIGURES " + _json.dumps({{{figures}}}))'''
# an email or E.164 phone number as delivered; a masked one ('a***@x.es', '+34***12') does not match
RAW_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
RAW_PHONE = re.compile(r"\+[0-9]{8,}")


def kernel_overrides(settings) -> list[str]:
    """--set overrides that point a kernel's settings at the demo lakehouse (its paths and MLflow store, the
    project's JAR cache, as tests/conftest.py::test_settings made them) with a small Spark."""
    paths = [f"paths.{k}={settings.path(getattr(settings.paths, k))}"
             for k in ("landing", "ground_truth", "lakehouse", "checkpoints", "reports")]
    return [*paths, f"mlflow.tracking_uri={settings.path(settings.mlflow.tracking_uri)}",
            f"mlflow.artifact_root={settings.path(settings.mlflow.artifact_root)}",
            f"spark.ivy_dir={settings.path(settings.spark.ivy_dir)}", *KERNEL_SPARK]


@dataclass
class Executed:
    name: str
    nb: nbformat.NotebookNode
    seconds: float
    error: str | None
    jvm_log: Path

    def printed(self, prefix: str) -> dict:
        """The JSON the probe cell printed after `prefix`."""
        for output in self.nb.cells[-1].get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(prefix + " "):
                    return json.loads(line[len(prefix) + 1:])
        raise AssertionError(f"{self.name}: the probe cell printed no {prefix} line")

    def failure(self) -> str:
        log = self.jvm_log.read_text(errors="replace")[-3000:] if self.jvm_log.is_file() else "(no JVM log)"
        return f"{self.name}.ipynb failed:\n{self.error}\n--- JVM log ({self.jvm_log}) ---\n{log}"


def prepared(name: str, settings, jvm_log: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}.ipynb: one cell tagged `parameters`, found {len(tagged)}"
    tagged[0].source = PARAMETERS.format(prefix=sys.prefix, overrides=kernel_overrides(settings),
                                         conf_dir=str(settings.conf_dir), jvm_log=str(jvm_log))
    expected = EXPECTED[name]
    figures = ", ".join(f"{k!r}: {expr}" for k, expr in expected["figures"].items())
    nb.cells.append(nbformat.v4.new_code_cell(PROBE.format(results=expected["results"], figures=figures)))
    return nb


def _execute(name: str, settings, folder: Path, km: KernelManager) -> Executed:
    """`name` run in the shared kernel `km`, after its namespace is reset (what a notebook shows is its own)."""
    jvm_log = folder / "kernel.jvm.log"    # the kernel's one JVM: its log is the first notebook's build_spark's
    nb = prepared(name, settings, jvm_log)
    nb.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))
    client = NotebookClient(nb, timeout=600, km=km, resources={"metadata": {"path": str(PROJECT_ROOT)}})
    start, error = time.monotonic(), None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc)
    seconds = time.monotonic() - start
    nbformat.write(nb, folder / f"{name}.ipynb")   # the executed copy, to look at when a test fails
    return Executed(name, nb, seconds, error, jvm_log)


@pytest.fixture(scope="module")
def executed(pipeline_demo, tmp_path_factory) -> dict[str, Executed]:
    """Every notebook executed on the demo lakehouse, one after the other in one kernel (one JVM start)."""
    settings, _, _ = pipeline_demo
    folder = tmp_path_factory.mktemp("notebooks")
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(PROJECT_ROOT))
    try:
        runs = [_execute(name, settings, folder, km) for name in EXPECTED]
    finally:
        km.shutdown_kernel(now=True)
    print("notebook seconds: " + ", ".join(f"{r.name} {r.seconds:.1f}" for r in runs)
          + f"; total {sum(r.seconds for r in runs):.1f}")
    return {r.name: r for r in runs}


def test_the_notebooks_are_the_ones_the_suite_runs():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_notebook_is_committed_clean(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.id for c in code if c.outputs or c.execution_count is not None] == []
    assert ["parameters" in c.metadata.get("tags", []) for c in code][:1] == [True]


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_notebook_runs_top_to_bottom_and_every_result_has_rows(executed, name):
    run = executed[name]
    assert run.error is None, run.failure()
    sizes = run.printed("RESULTS")
    assert [result for result, rows in sizes.items() if not rows] == []


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_notebook_shows_no_raw_email_or_phone_number(executed, pipeline_demo, name):
    _, lake, _ = pipeline_demo
    run = executed[name]
    assert run.error is None, run.failure()
    text = json.dumps([c.get("outputs", []) for c in run.nb.cells[:-1]])   # the probe cell is the test's own
    delivered = {v for r in lake.read(IDENTITY_RECORDS).select("email", "phone", "email_raw", "phone_raw").collect()
                 for v in r if v and len(v) > 5}   # 60 customers' records: small
    assert sorted(v for v in delivered if v in text) == []
    assert [m.group(0) for m in RAW_EMAIL.finditer(text)] == []
    assert RAW_PHONE.findall(text) == []


@pytest.mark.slow
@pytest.mark.process
def test_the_customer_360_rfm_segments_cover_every_profiled_customer(executed, pipeline_demo):
    _, lake, _ = pipeline_demo
    assert executed["customer_360"].printed("FIGURES")["rfm_customers"] == lake.read(CUSTOMER_PROFILE).count()


@pytest.mark.slow
@pytest.mark.process
def test_the_identity_review_counts_every_customer_record_and_link(executed, pipeline_demo):
    _, lake, _ = pipeline_demo
    figures = executed["identity_review"].printed("FIGURES")
    assert (figures["customers"], figures["records"], figures["links"]) == (
        lake.read(CUSTOMERS).count(), lake.read(IDENTITY_MAP).count(), lake.read(IDENTITY_LINKS).count())
    explained = lake.read(IDENTITY_MAP).where(f"customer_id = '{figures['explained_customer']}'").count()
    assert figures["explained_records"] == explained


@pytest.mark.slow
@pytest.mark.process
def test_the_churn_notebook_shows_the_champion_that_scored_and_every_action(executed, pipeline_demo):
    _, lake, _ = pipeline_demo
    figures = executed["churn_and_actions"].printed("FIGURES")
    scores = lake.read(CHURN_SCORES)
    assert {r.model_version for r in scores.select("model_version").distinct().collect()} == {figures["champion_version"]}
    assert figures["scored"] == scores.count()
    assert figures["valued"] == lake.read(CUSTOMER_VALUE).count()
    assert figures["actions"] == figures["at_risk"] == lake.read(NEXT_BEST_ACTION).count()
