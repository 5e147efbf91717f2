"""Table contracts: one YAML file per table in conf/tables/<layer>/<table>.yaml (description, schema, suite).

An expectation is either `row` level (failing rows are quarantined, the batch proceeds) or `critical`
(any failure stops the pipeline). cdp.quality.contracts turns the row-level ones into one Spark Column.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from cdp.config.loading import Strict, load_yaml_model
from cdp.config.pii_categories import PiiCategory, Protection
from cdp.config.settings import Settings
from cdp.errors import ConfigError
from cdp.tables import Table

ExpectationType = Literal["not_null", "between", "in_set", "regex", "unique", "unique_combination",
                          "row_count_between", "relationship"]
Level = Literal["row", "critical"]
Bound = int | float | datetime | date

TABLE_LEVEL_TYPES = ("unique", "unique_combination", "row_count_between", "relationship")
COLUMN_TYPES = ("not_null", "between", "in_set", "regex", "unique", "relationship")
# Which optional parameters each type takes; a parameter given to a type that ignores it is a mistake.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "not_null": (),
    "between": ("min", "max"),
    "in_set": ("values",),
    "regex": ("pattern",),
    "unique": (),
    "unique_combination": ("columns",),
    "row_count_between": ("min", "max"),
    "relationship": ("to",),
}
# Checked by Spark in cdp.quality.gx_runner (Great Expectations compares no two tables): every non-null value of
# `column` is a value of `to` ('layer.table.column'), like dbt's relationships test.
SPARK_TYPES = ("relationship",)


class ColumnContract(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Spark SQL type names: string, int, long, double, boolean, date, timestamp, map<string,string>, ...
    type: str = Field("string", pattern=r"^[a-z]+(\(\d+(,\s*\d+)?\)|<.+>)?$")
    description: str = ""
    # what personal data the column holds (cdp.config.pii_categories); a protected copy says how it replaced it
    pii: PiiCategory | None = None
    protected: Protection | None = Field(None, validate_default=True)

    @field_validator("protected")
    @classmethod
    def _protected_needs_pii(cls, protected: str | None, info: ValidationInfo) -> str | None:
        if protected is not None and info.data.get("pii") is None:
            raise ValueError("'protected' says how a PII column was replaced; give its category with 'pii' too")
        return protected


class ExpectationSpec(Strict):
    # Field order matters: each validator sees the fields declared above it in info.data.
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="reported in quarantine, history and docs")
    type: ExpectationType
    level: Level
    column: str | None = Field(None, validate_default=True)
    min: Bound | None = Field(None, validate_default=True)
    max: Bound | None = Field(None, validate_default=True)
    values: list[str | int | float | bool] | None = Field(None, validate_default=True)
    pattern: str | None = Field(None, validate_default=True)
    columns: list[str] | None = Field(None, validate_default=True)
    to: str | None = Field(None, validate_default=True, pattern=r"^[a-z]+\.[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""

    @field_validator("level")
    @classmethod
    def _table_level_is_critical(cls, level: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if kind in TABLE_LEVEL_TYPES and level != "critical":
            raise ValueError(f"a {kind} expectation checks the whole table, so its level must be critical")
        return level

    @field_validator("column")
    @classmethod
    def _column_fits_type(cls, column: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind in COLUMN_TYPES and not column:
            raise ValueError(f"a {kind} expectation needs a column")
        if kind == "row_count_between" and column:
            raise ValueError("row_count_between checks the table; remove 'column'")
        return column

    @field_validator("min", "max", "values", "pattern", "columns", "to")
    @classmethod
    def _parameter_fits_type(cls, value, info: ValidationInfo):
        kind = info.data.get("type")
        if kind is None:
            return value
        if value is not None and info.field_name not in PARAMETERS[kind]:
            raise ValueError(f"'{info.field_name}' does not apply to a {kind} expectation")
        if info.field_name == "max" and kind in ("between", "row_count_between"):
            low = info.data.get("min")
            if low is None and value is None:
                raise ValueError(f"a {kind} expectation needs min, max or both")
            if low is not None and value is not None and _comparable(low, value) and low > value:
                raise ValueError(f"min {low} is greater than max {value}")
        if info.field_name == "values" and kind == "in_set":
            if not value:
                raise ValueError("an in_set expectation needs a non-empty list of values")
            if any(isinstance(v, bool) for v in value):
                raise ValueError("values holds a boolean; quote codes like NO, YES, ON, OFF (YAML reads them as booleans)")
        if info.field_name == "pattern" and kind == "regex":
            if not value:
                raise ValueError("a regex expectation needs a pattern")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression ({exc})") from None
        if info.field_name == "columns" and kind == "unique_combination" and (not value or len(value) < 2):
            raise ValueError("a unique_combination expectation needs 'columns' with two or more column names")
        if info.field_name == "to" and kind == "relationship" and not value:
            raise ValueError("a relationship expectation needs 'to': the referenced 'layer.table.column'")
        bad_count = not isinstance(value, int) or isinstance(value, bool) or value < 0
        if kind == "row_count_between" and info.field_name in ("min", "max") and value is not None and bad_count:
            raise ValueError("row counts must be whole numbers >= 0")
        return value


def _comparable(a, b) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (type(a) is type(b))


class TableContract(Strict):
    table: str = Field(pattern=r"^(bronze|silver|gold|quarantine|audit)\.[a-z][a-z0-9_]*$")
    description: str = ""
    # another table whose columns this one carries (a history of it): expanded at load, after the first column
    # listed here, so the two contracts cannot drift apart
    columns_from: str | None = Field(None, pattern=r"^(bronze|silver|gold|quarantine|audit)\.[a-z][a-z0-9_]*$")
    columns: list[ColumnContract] = Field(default_factory=list)
    expectations: list[ExpectationSpec] = Field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def row_expectations(self) -> list[ExpectationSpec]:
        return [e for e in self.expectations if e.level == "row"]

    @property
    def gx_expectations(self) -> list[ExpectationSpec]:
        """The expectations Great Expectations runs (all but the cross-table ones)."""
        return [e for e in self.expectations if e.type not in SPARK_TYPES]

    @property
    def critical_expectations(self) -> list[ExpectationSpec]:
        return [e for e in self.expectations if e.level == "critical"]

    def problems(self) -> list[str]:
        """Mistakes that span fields: duplicate names, expectations on undeclared columns."""
        out: list[str] = []
        names = [e.name for e in self.expectations]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            out.append(f"expectation name(s) used twice: {', '.join(dupes)}")
        cols = self.column_names
        if len(set(cols)) != len(cols):
            out.append("a column is declared twice")
        if cols:
            for e in self.expectations:
                for c in [*([e.column] if e.column else []), *(e.columns or [])]:
                    if c not in cols:
                        out.append(f"expectation '{e.name}' checks column '{c}', which is not declared in columns")
        return out


def contract_path(settings: Settings, table: Table | str) -> Path:
    layer, _, name = str(table).partition(".")
    if not layer or not name:
        raise ConfigError(f"table name must be '<layer>.<table>', e.g. silver.interactions: {table!r}")
    return Path(settings.conf_dir) / "tables" / layer / f"{name}.yaml"


def _load(path: Path, expected_table: str | None = None) -> TableContract:
    contract = load_yaml_model(path, TableContract, "see conf/tables/silver/interactions.yaml for the format")
    assert isinstance(contract, TableContract)
    if expected_table and contract.table != expected_table:
        raise ConfigError(f"{path}: 'table' says {contract.table} but the file is for {expected_table}")
    if contract.columns_from:
        contract = _with_columns_of(contract, path)
    problems = contract.problems()
    if problems:
        raise ConfigError(f"{path}: {problems[0]}")
    return contract


def _with_columns_of(contract: TableContract, path: Path) -> TableContract:
    """The contract with `columns_from`'s columns inserted after its own first column (the shared key)."""
    layer, _, name = (contract.columns_from or "").partition(".")
    source = path.parent.parent / layer / f"{name}.yaml"
    if not source.is_file():
        raise ConfigError(f"{path}: key 'columns_from' names {contract.columns_from}, which has no contract at {source}")
    base = _load(source, contract.columns_from)
    own = [c.name for c in contract.columns]
    carried = [c for c in base.columns if c.name not in own]
    return contract.model_copy(update={"columns": [*contract.columns[:1], *carried, *contract.columns[1:]],
                                       "columns_from": None})

def load_contract(settings: Settings, table: Table | str) -> TableContract:
    """The contract of a table from <conf_dir>/tables/<layer>/<table>.yaml; one-line ConfigError if bad."""
    return _load(contract_path(settings, table), str(table))


def load_contracts(settings: Settings, layer: str | None = None) -> list[TableContract]:
    """Every contract under <conf_dir>/tables (or one layer of it), sorted by table name."""
    root = Path(settings.conf_dir) / "tables"
    files = sorted((root / layer).glob("*.yaml") if layer else root.glob("*/*.yaml"))
    return sorted(
        (_load(f, f"{f.parent.name}.{f.stem}") for f in files), key=lambda c: c.table
    )
