"""PII protection: the BI-facing copies of gold tables in which every PII column is hashed or masked.

Which columns hold personal data is said once, by the `pii:` marks of the table contracts; conf/pii.yaml says
which tables get a copy and how each category is replaced (hash or mask): cdp.config.pii. The pure core, `protect`, is a
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

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.config.contracts import TableContract
from cdp.config.pii import SALT_VARIABLE, planned_copies, salt_problem
from cdp.config.pii_categories import EMAIL_PATTERN, PHONE_PATTERN
from cdp.config.project import ProjectConfig
from cdp.errors import ConfigError


@dataclass(frozen=True)
class ProtectedCopies:
    rows: dict[str, int] = field(default_factory=dict)   # copy -> rows written
    skipped: str | None = None                            # why nothing was written


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

def write_protected_copies(lake, conf: ProjectConfig | Settings, run_id: str) -> ProtectedCopies:
    """Write every protected copy of conf/pii.yaml from its gold table (gated on the copy's contract).

    Without a usable salt: a ConfigError when catalog.database is set (the publish step would expose the tables
    to BI without their copies), else nothing is written and `skipped` says why."""
    from cdp.quality.gold import published

    conf = ProjectConfig.of(conf)
    settings = conf.settings
    copies = planned_copies(settings, conf.pii)
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
    frames = {c.target: protect(lake.read(c.source), conf.contract(c.source), c.methods, secret)
              for c in copies if lake.exists(c.source)}
    with published(lake, conf, frames, run_id, "protect_pii") as written:
        rows = {target.qualified: df.count() for target, df in written.items()}
    return ProtectedCopies(rows)
