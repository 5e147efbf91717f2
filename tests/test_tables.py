"""The table registry and the contracts stay in step: every table named once, each with its contract, the code
naming tables only through the registry, and the quarantine and audit tables there from the first run on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from frame_asserts import assert_frame_equal

import cdp
from cdp.check import _ddl_columns
from cdp.pipeline import bootstrap
from cdp.quality import load_contract, load_contracts
from cdp.tables import OPERATIONAL, REGISTERED, table

CODE = Path(cdp.__file__).parent
NAMES = {t.qualified for t in REGISTERED}
BRONZE_NAME = re.compile(r"^bronze\.[a-z][a-z0-9_]*$")


def test_every_registered_table_has_a_contract_and_every_contract_a_table(settings):
    assert sorted(c.table for c in load_contracts(settings)) == sorted(t.qualified for t in REGISTERED)


@pytest.mark.parametrize("registered", OPERATIONAL, ids=[t.qualified for t in OPERATIONAL])
def test_registered_schemas_are_their_contracts_columns(settings, registered):
    contract = load_contract(settings, registered)
    assert [(c.name, c.type) for c in contract.columns] == _ddl_columns(registered.schema)


@pytest.mark.parametrize("registered", REGISTERED, ids=[t.qualified for t in REGISTERED])
def test_registered_keys_are_contract_columns(settings, registered):
    assert set(registered.key) - set(load_contract(settings, registered).column_names) == set()


def test_names_resolve_to_the_registered_tables():
    assert [table(t.qualified) for t in REGISTERED] == list(REGISTERED)


def test_an_unknown_table_name_is_refused():
    with pytest.raises(ValueError, match="unknown table 'gold.nope'"):
        table("gold.nope")


def test_no_module_spells_a_table_name():
    """Code names tables through cdp.tables, never by a 'layer.table' string (docs and messages may)."""
    found = []
    for path in sorted(CODE.rglob("*.py")):
        if path.name == "tables.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value in NAMES or BRONZE_NAME.match(node.value)):
                found.append(f"{path.relative_to(CODE)}:{node.lineno} {node.value}")
    assert found == []


@pytest.fixture(scope="module")
def bootstrapped(spark, tmp_path_factory):
    from cdp.io import Lakehouse

    lake = Lakehouse(spark, str(tmp_path_factory.mktemp("bootstrap") / "lakehouse"))
    bootstrap(lake)
    return lake


@pytest.mark.slow  # seven Delta tables created and read back (tests/test_pipeline.py: they exist after a run)
def test_bootstrap_creates_the_operational_tables_empty(bootstrapped, settings):
    lake = bootstrapped
    for registered in OPERATIONAL:
        columns = ", ".join(f"{c.name} {c.type}" for c in load_contract(settings, registered).columns)
        assert_frame_equal(lake.read(registered), [], columns)


@pytest.mark.slow  # seven Delta tables created and read back (tests/test_pipeline.py: they exist after a run)
def test_bootstrap_twice_changes_nothing(bootstrapped):
    bootstrap(bootstrapped)
    assert {t.qualified: bootstrapped.delta_table(t).history(1).first().version for t in OPERATIONAL} == {
        t.qualified: 0 for t in OPERATIONAL}
