"""PII protection: the BI-facing copies of gold tables in which every PII column is hashed or masked.

Which columns hold personal data is said once, by the `pii:` marks of the table contracts; conf/pii.yaml says
which tables get a copy and how each category is replaced (hash or mask). The pure core, `protect`, is a
DataFrame in and a DataFrame out; `write_protected_copies` is the `protect_pii` step's writer (gate, overwrite).

Copies rather than catalog views: a view's SQL text is stored in the metastore and shown by SHOW CREATE TABLE,
so a salt inlined there would be readable by every BI user; a copy holds only the hashes, and the salt is read
from the environment (CDP_PII_SALT) by the job that writes it, never stored.

The hash is HMAC-SHA256 (RFC 2104) of the normalised value with the salt as key, computed in Spark
(sha2 over the key's inner and outer pads), so `pii_hash` in Python gives the same 64 hex characters.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, field_validator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings, Strict, conf_file, load_yaml_model
from cdp.config.pii_categories import CATEGORIES, EMAIL_PATTERN, PHONE_PATTERN, PiiCategory, Protection
from cdp.errors import ConfigError
from cdp.quality.contracts import ColumnContract, TableContract, contract_path, load_contract
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


@dataclass(frozen=True)
class ProtectedCopies:
    rows: dict[str, int] = field(default_factory=dict)   # copy -> rows written
    skipped: str | None = None                            # why nothing was written


# ---------------------------------------------------------------- configuration (no Spark)

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


# ---------------------------------------------------------------- the column functions (pure Spark)

def normalised(value: Column, category: str) -> Column:
    """What is hashed: emails lower case and trimmed, phones as digits and '+', anything else as lower-case text."""
    text = F.trim(value.cast("string"))
    if category == "phone":
        return F.regexp_replace(text, r"[^0-9+]", "")
    return F.lower(text)


def _pads(secret: str) -> tuple[bytes, bytes]:
    key = secret.encode("utf-8")
    key = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hashed(value: Column, category: str, secret: str) -> Column:
    """HMAC-SHA256 of the normalised value keyed by the salt, 64 hex characters; NULL stays NULL."""
    inner_pad, outer_pad = _pads(secret)
    inner = F.sha2(F.concat(F.lit(bytearray(inner_pad)), F.encode(normalised(value, category), "UTF-8")), 256)
    return F.sha2(F.concat(F.lit(bytearray(outer_pad)), F.unhex(inner)), 256)


def masked(value: Column, category: str) -> Column:
    """A hint that identifies no one: j***@example.com, +34 *** *** 678, J***, 28***, 1985-**-**, [email] in text."""
    s = F.trim(value.cast("string"))
    if category == "email":
        out = F.when(F.instr(s, "@") > 1, F.concat(s.substr(1, 1), F.lit("***@"), F.substring_index(s, "@", -1)))
    elif category == "phone":
        digits = F.regexp_replace(s, r"[^0-9+]", "")
        tail = F.concat(F.lit("*** *** "), F.substring(digits, -3, 3))
        out = F.when(F.length(digits) >= 7, F.when(digits.startswith("+"), F.concat(digits.substr(1, 3), F.lit(" "), tail))
                     .otherwise(tail))
    elif category == "birth_date":
        out = F.concat(s.substr(1, 4), F.lit("-**-**"))
    elif category == "free_text":
        out = F.regexp_replace(F.regexp_replace(s, EMAIL_PATTERN, "[email]"), PHONE_PATTERN, "[phone]")
    else:   # name: the initial; address, handle, identifier: two characters
        out = F.concat(s.substr(1, 1 if category == "name" else 2), F.lit("***"))
    return F.when(value.isNull(), F.lit(None).cast("string")).otherwise(F.coalesce(out, F.lit("***")))


def _as_text(df: DataFrame, name: str) -> Column:
    """A column as text: maps, arrays and structs as JSON (a map of custom attributes is one identifier), an empty
    map or array as NULL (every customer without custom attributes would otherwise share one hash)."""
    kind, col = df.schema[name].dataType.typeName(), F.col(name)
    if kind in ("map", "array"):
        return F.when(F.size(col) > 0, F.to_json(col))
    return F.to_json(col) if kind == "struct" else col


def protect(df: DataFrame, contract: TableContract, methods: dict[str, str], secret: str) -> DataFrame:
    """The frame with every PII column (contract's `pii` marks) replaced as `methods` says; other columns as they are."""
    category = {c.name: c.pii for c in contract.columns if c.pii}

    def replaced(name: str) -> Column:
        if name not in methods:
            return F.col(name)
        value = _as_text(df, name)
        done = hashed(value, category[name], secret) if methods[name] == "hash" else masked(value, category[name])
        return done.alias(name)

    return df.select(*[replaced(name) for name in df.columns])


# ---------------------------------------------------------------- the same in Python (erasure, BI look-ups, tests)

def pii_hash(value: str, category: str, secret: str | None = None) -> str:
    """The hash a protected copy holds for `value` (salt from CDP_PII_SALT when not given)."""
    secret = secret if secret is not None else os.environ.get(SALT_VARIABLE, "")
    text = value.strip()
    text = re.sub(r"[^0-9+]", "", text) if category == "phone" else text.lower()
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the writer (the protect_pii step)

def write_protected_copies(lake, settings: Settings, run_id: str) -> ProtectedCopies:
    """Write every protected copy of conf/pii.yaml from its gold table (gated on the copy's contract).

    Without a usable salt: a ConfigError when catalog.database is set (the publish step would expose the tables
    to BI without their copies), else nothing is written and `skipped` says why."""
    from cdp.frames import uncache
    from cdp.quality.gold import gate_tables

    copies = planned_copies(settings)
    secret = os.environ.get(SALT_VARIABLE)
    problem = salt_problem(secret)
    if problem:
        what = ", ".join(c.target.qualified for c in copies)
        if settings.catalog.database:
            raise ConfigError(f"{problem}: the protected copies ({what}) cannot be written for catalog "
                              f"{settings.catalog.database}; export {SALT_VARIABLE}=<secret from your secret store> "
                              "(e.g. openssl rand -hex 32) and run `cdp run --from protect_pii`")
        return ProtectedCopies(skipped=f"{problem}: protected copies not written ({what})")
    assert secret is not None
    frames = {c.target: protect(lake.read(c.source), load_contract(settings, c.source), c.methods, secret)
              for c in copies if lake.exists(c.source)}
    checked = gate_tables(lake, settings, frames, run_id, "protect_pii")
    rows = {}
    for target, df in checked.items():
        lake.overwrite(df, target)
        rows[target.qualified] = df.count()
    uncache(*checked.values())
    return ProtectedCopies(rows)
