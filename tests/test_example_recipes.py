"""The examples' recipes as a new user runs them, in a shell, from their READMEs (conf/examples/*/README.md): a
company folder of its own, `cdp check`, then `cdp run` twice. An orders-only shop gets a churn score and a value
for every customer who bought; an identity-only person register (FEBRL1) gets its customers, and the steps its
data cannot feed are recorded as not applicable; the second run (day two, nothing new) succeeds and changes no
customer. The terminal shows no stray output on stderr (slow: real subprocesses, Spark, Delta, MLflow)."""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import test_overrides

from cdp.config import DEFAULT_CONF_DIR, PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.process]

CUSTOMERS_N = 600
START, DAYS = datetime(2024, 1, 1), 730


def write_orders(path: Path, seed: int = 3) -> int:
    """Orders of customers who buy at their own Poisson rate until they drop out for good, each spending around
    their own mean (the BG/NBD and Gamma-Gamma stories); returns how many customers ordered."""
    rng = random.Random(seed)
    rows = []
    for c in range(CUSTOMERS_N):
        rate = rng.gammavariate(2.0, 1 / 40)                 # purchases per day, mean 1 in 20 days
        t = rng.uniform(0, 300)
        leave = t + rng.expovariate(1 / 400)                  # days until the customer leaves
        nu = rng.gammavariate(4.0, 1 / 15)                    # spend: Gamma(6, nu), nu ~ Gamma(4, 15): mean 30
        n = 0
        while t < min(leave, DAYS):
            n += 1
            rows.append((f"K{c:04d}", f"O{c:04d}-{n:03d}", (START + timedelta(days=t)).isoformat() + "Z",
                         round(rng.gammavariate(6.0, 1 / nu), 2)))
            t += rng.expovariate(rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "order_id", "ordered_at", "amount"])
        w.writerows(rows)
    return len({r[0] for r in rows})


def recipe(example: str) -> list[str]:
    """The ```bash block of the example's README, one command per line."""
    text = (DEFAULT_CONF_DIR / "examples" / example / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, f"conf/examples/{example}/README.md lost its recipe"
    return [line for line in block.group(1).splitlines() if line.strip()]


def small_machine(conf: Path) -> None:
    """The suite's Spark settings for tiny data in the company's local.yaml (what a user tunes for their machine)."""
    spark: dict = {"conf": {}}
    for item in test_overrides(Path("/unused")):
        key, _, value = item.partition("=")
        if key.startswith("spark.conf."):
            spark["conf"][key.removeprefix("spark.conf.")] = value
        elif key in ("spark.master", "spark.log_level"):
            spark[key.removeprefix("spark.")] = value
    (conf / "local.yaml").write_text(yaml.safe_dump({"spark": spark}))


def shell(lines: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


def run_recipe(example: str, variable: str, folder: Path, replace: dict[str, str]) -> dict:
    """Set up the company folder as the README says, then run its cdp lines twice: {'setup', 'first', 'second'}."""
    lines = recipe(example)
    assert lines[0].startswith(f"{variable}="), lines[0]
    lines[0] = f"{variable}={folder}"
    for old, new in replace.items():
        lines = [line.replace(old, new) for line in lines]
    cdp = ".venv/bin/cdp" if (PROJECT_ROOT / ".venv" / "bin" / "cdp").exists() else f"{sys.executable} -m cdp"
    lines = [line.replace(".venv/bin/cdp", cdp).replace(".venv/bin/python", sys.executable) for line in lines]
    first_cdp = next(i for i, line in enumerate(lines) if cdp in line)
    env = {**os.environ, "CDP_ENV": "local"}
    done = {"setup": shell(lines[:first_cdp], env)}
    assert done["setup"].returncode == 0, done["setup"].stderr
    small_machine(folder / "conf")
    commands = [lines[0], *lines[first_cdp:]]
    done["first"] = shell(commands, env)
    done["second"] = shell(commands, env)
    return done


def table(folder: Path, name: str):
    """A lakehouse table of the company folder, read with delta-rs (no Spark needed): a pandas frame."""
    from deltalake import DeltaTable

    layer, _, table_name = name.partition(".")
    return DeltaTable(str(folder / "lakehouse" / layer / table_name)).to_pandas()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    orders = root / "exports" / "orders_2025.csv"
    buyers = write_orders(orders)
    folder = root / "shop"
    return folder, buyers, run_recipe("orders_only", "SHOP", folder, {"/path/to/orders*.csv": str(orders)})


@pytest.fixture(scope="module")
def register(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe") / "people"
    return folder, run_recipe("febrl", "PEOPLE", folder, {})


@pytest.mark.parametrize("run", ["first", "second"])
def test_the_orders_only_recipe_runs_as_written_every_day(shop, run):
    _, _, done = shop
    proc = done[run]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""   # progress and the summary on stdout; nothing stray on stderr
    assert " succeeded: " in proc.stdout.splitlines()[-1]


def test_every_customer_who_bought_has_a_churn_score_and_a_value(shop):
    folder, buyers, _ = shop
    customers = table(folder, "gold.customers")
    scores, value = table(folder, "gold.churn_scores"), table(folder, "gold.customer_value")
    assert len(customers) == buyers
    assert (len(scores), scores["churn_probability"].isna().sum()) == (buyers, 0)
    assert len(value) == buyers
    actions = set(table(folder, "gold.next_best_action")["action"])
    assert actions == {"no_consented_channel"}   # no CRM, so no consent anywhere: listed, never contacted


def test_the_second_day_resolves_incrementally_and_changes_no_customer(shop):
    folder, _, _ = shop
    runs = table(folder, "audit.identity_runs").sort_values("resolved_at")
    assert list(runs["mode"]) == ["full", "incremental"]
    changes = table(folder, "gold.identity_changes")
    assert set(changes["run_id"]) == {runs["run_id"].iloc[0]}   # every customer id was minted by the first run


def test_the_recipe_keeps_the_companys_data_in_its_own_folder(shop):
    folder, _, _ = shop
    assert (folder / "mlflow.db").is_file() and (folder / "lakehouse" / "gold" / "customers").is_dir()


@pytest.mark.parametrize("run", ["first", "second"])
def test_the_identity_only_recipe_runs_as_written_every_day(register, run):
    _, done = register
    proc = done[run]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for step in ("journeys", "profiles", "churn_model", "customer_value", "next_best_action"):
        assert re.search(rf"{step}: not applicable \(no source produces interactions", proc.stdout), step


def test_the_register_resolves_into_its_persons(register):
    folder, _ = register
    identity_map = table(folder, "gold.identity_map")
    persons = identity_map["source_record_key"].str.extract(r"rec-(\d+)-")[0]
    assert identity_map["customer_id"].nunique() == persons.nunique() == 500
    # one person per customer and one customer per person
    assert identity_map.assign(p=persons).groupby("customer_id")["p"].nunique().max() == 1
    assert identity_map.assign(p=persons).groupby("p")["customer_id"].nunique().max() == 1
    steps = table(folder, "audit.pipeline_runs")
    last = steps[(steps["level"] == "step") & (steps["step"] == "customer_value")]
    assert set(last["status"]) == {"not_applicable"}
    assert (folder / "lakehouse" / "gold" / "customers_protected").is_dir()
