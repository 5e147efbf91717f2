"""PII protection settings: conf/pii.yaml (which gold tables get a BI-facing copy, and how each PII category is
replaced: hash or mask), checked against the `pii:` marks of the table contracts before Spark starts; and what
a usable salt is. cdp.privacy.pii writes the copies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from cdp.config.contracts import ColumnContract, TableContract, contract_path, load_contract
from cdp.config.loading import Strict, load_yaml_model
from cdp.config.pii_categories import CATEGORIES, PiiCategory, Protection
from cdp.config.settings import Settings, conf_file
from cdp.errors import ConfigError
from cdp.tables import Table, table

SALT_VARIABLE = "CDP_PII_SALT"     # the erasure log hashes requests with the same secret (cdp.privacy.requests)
MIN_SALT_CHARS = 16
HINT = "see conf/pii.yaml in the project for the format"


class CopySpec(Strict):
    table: str = Field(pattern=r"^gold\.[a-z][a-z0-9_]*$")
    columns: dict[str, Protection] = Field(default_factory=dict)


class PiiConfig(Strict):
    methods: dict[PiiCategory, Protection]
    copies: dict[str, CopySpec] = Field(default_factory=dict)

    @field_validator("methods")
    @classmethod
    def _every_category(cls, methods: dict) -> dict:
        missing = [c for c in CATEGORIES if c not in methods]
        if missing:
            raise ValueError(f"gives no method for {', '.join(missing)}; every category needs hash or mask")
        return methods


@dataclass(frozen=True)
class ProtectedCopy:
    source: Table
    target: Table
    methods: dict[str, str]   # column -> hash | mask, for every PII column of the source


def pii_config_path(settings: Settings) -> Path:
    return conf_file("pii.yaml", settings)


def load_pii_config(settings: Settings) -> PiiConfig:
    config = load_yaml_model(pii_config_path(settings), PiiConfig, HINT)
    assert isinstance(config, PiiConfig)
    return config


def copy_columns(source: TableContract, methods: dict[str, str]) -> list[ColumnContract]:
    """The columns a protected copy of `source` has: the same, each PII column a string saying how it is replaced."""
    return [c.model_copy(update={"type": "string", "protected": methods[c.name]}) if c.name in methods else c
            for c in source.columns]


def copy_problem(source: TableContract, target: TableContract, methods: dict[str, str]) -> str | None:
    """What the copy's contract says differently from the columns protect() writes (first difference)."""
    want = [(c.name, c.type, c.pii, c.protected) for c in copy_columns(source, methods)]
    have = [(c.name, c.type, c.pii, c.protected) for c in target.columns]
    if [w[0] for w in want] != [h[0] for h in have]:
        return f"columns {', '.join(h[0] for h in have)} are not {source.table}'s {', '.join(w[0] for w in want)}"
    for (name, *w), (_, *h) in zip(want, have, strict=True):
        if w != h:
            return (f"column {name} is declared type {h[0]}, pii {h[1]}, protected {h[2]}; "
                    f"the copy writes type {w[0]}, pii {w[1]}, protected {w[2]}")
    return None


def planned_copies(settings: Settings, config: PiiConfig | None = None) -> list[ProtectedCopy]:
    """Every copy of conf/pii.yaml, checked against the contracts; a ConfigError of one line on the first mistake."""
    config = config or load_pii_config(settings)
    path, out = pii_config_path(settings), []
    for name, spec in config.copies.items():
        try:
            source, target = table(name), table(spec.table)
        except ValueError as exc:
            raise ConfigError(f"{path}: key 'copies.{name}': {exc}") from None
        contract = load_contract(settings, source)
        pii = {c.name: c.pii for c in contract.columns if c.pii}
        if not pii:
            raise ConfigError(f"{path}: key 'copies.{name}' names a table whose contract marks no column pii; remove it")
        unknown = [c for c in spec.columns if c not in pii]
        if unknown:
            raise ConfigError(f"{path}: key 'copies.{name}.columns.{unknown[0]}' is not a pii column of {name}; "
                              f"its pii columns are {', '.join(pii)}")
        methods = {c: spec.columns.get(c, config.methods[category]) for c, category in pii.items()}
        problem = copy_problem(contract, load_contract(settings, target), methods)
        if problem:
            raise ConfigError(f"{contract_path(settings, target)}: {problem}; make the contract match conf/pii.yaml")
        out.append(ProtectedCopy(source, target, methods))
    return out


def salt_problem(secret: str | None) -> str | None:
    if not secret:
        return f"the environment variable {SALT_VARIABLE} is not set"
    if len(secret) < MIN_SALT_CHARS:
        return f"{SALT_VARIABLE} is shorter than {MIN_SALT_CHARS} characters"
    return None
