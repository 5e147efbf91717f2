"""How a YAML configuration file becomes a validated model: the strict base every configuration model extends, a
YAML loader that refuses a key given twice, and the one line a mistake becomes ("<file>: key '<dotted.key>' <what is
wrong>; <what to do>"). Pure Python: no Spark."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from cdp.config.checks import short
from cdp.errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SETTINGS_HINT = "see conf/base.yaml for the keys that exist"
# Human words for the field patterns pydantic would otherwise quote as a regular expression.
_PATTERN_HINTS = {
    r"^[a-z][a-z0-9_]*$": "use lowercase letters, digits and '_', starting with a letter",
    r"^[A-Z]{2}$": "use a two-letter upper-case ISO-3166 code such as ES",
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$": "give a schema name such as cdp_gold (or catalog.schema)",
}


class KeyProblem(ValueError):
    """Raised by a model validator to blame one key (relative to the model) instead of the model as a whole."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if repeated:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {short(key)} is given twice in the same "
                                  "mapping; keep one")
        return super().construct_mapping(node, deep)


# The configuration files a step reads, and what each configures (a missing one is named with this).
CONF_FILES = {
    "identity.yaml": "identity resolution: match rules, custom attributes, guards, probabilistic matching",
    "journeys.yaml": "the customer journeys: sessions, stages, incomplete purchases, funnels, paths",
    "attribution.yaml": "purchase attribution: the lookback window and models",
    "profile.yaml": "the Customer 360 profile: age bands, RFM segments, sentiment, the history's tracked columns",
    "segments.yaml": "the customer segments (conditions over the profile)",
    "churn.yaml": "churn prediction, customer value and retention actions",
    "pii.yaml": "the BI copies of the gold tables with PII hashed or masked",
}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        if path.name in CONF_FILES:
            raise ConfigError(f"{path}: not found; this file configures {CONF_FILES[path.name]}: copy the project's "
                              f"conf/{path.name} there and adapt it")
        if path.name == "base.yaml":
            raise ConfigError(f"{path}: not found; every configuration folder needs base.yaml (copy the project's "
                              "conf/ folder, or give --conf-dir the folder that holds it)")
        raise ConfigError(f"{path}: configuration file not found (choose an env that has conf/<env>.yaml, or create it)")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except ConfigError as exc:
        raise ConfigError(f"{path} {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}{where}: not valid YAML ({problem}); check the indentation and quoting there") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level (key: value lines), not {type(data).__name__}")
    return data


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _key_parts(loc: tuple) -> list:
    """The user's path in a pydantic error location: drop union-member and validator tags such as 'str',
    'function-after[...]' and the '[key]' marker of a bad dictionary key."""
    return [p for p in loc if not (isinstance(p, str) and (p in _TYPE_TAGS or "[" in p))]


def _strip_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return members[0] if len(members) == 1 else tp
    return tp


def _keys_at(model: type[BaseModel] | None, parts: list) -> list[str]:
    """Field names of the (sub)model found by walking `parts` from `model`; [] when not a model."""
    tp = model
    for part in parts:
        tp = _strip_optional(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) in (list, tuple, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    tp = _strip_optional(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    internal = {"env", "conf_dir"} if tp.__name__ == "Settings" else set()  # set by load_settings, not by users
    return [k for k in tp.model_fields if k not in internal]


# Words YAML authors use for allowed literal values (column types mostly).
_SYNONYMS = {"float": "double", "integer": "int", "bigint": "long", "str": "string", "text": "string",
             "bool": "boolean", "datetime": "timestamp"}


def _suggest(word: str, choices: list[str]) -> str:
    if _SYNONYMS.get(word.lower()) in choices:
        return f"did you mean {_SYNONYMS[word.lower()]!r}? "
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}? " if match else ""


def _value_hint(err: dict) -> str:
    """What to do about a bad scalar value, for the error types a YAML author meets."""
    kind, value = err["type"], err.get("input")
    if kind == "string_type" and isinstance(value, (bool, int, float)):
        return "quote it in the YAML, e.g. \"true\" or \"+10:00\" (YAML reads some unquoted values as numbers or booleans)"
    if kind == "string_pattern_mismatch":
        return _PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")), "")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "give a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return "use true or false"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "give a mapping (indented key: value lines)"
    if kind == "list_type":
        return "give a list (lines starting with '- ')"
    if kind == "literal_error" and isinstance(value, str):
        expected = [e.strip(" '") for e in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ").split(",")]
        return _suggest(value, expected).strip()
    return ""


def _describe(exc: ValidationError, origin: dict[str, str], default_source: str,
              model: type[BaseModel] | None = None, hint: str | None = SETTINGS_HINT) -> str:
    """One line for the first validation error: the file that set the key, the dotted key, what is wrong and
    what to do. Never prints a mapping or a list, and shortens long values."""
    errors = exc.errors()
    # a misspelt key shows up as "unknown key" plus "required key missing": the first says more
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    parts = _key_parts(err["loc"])
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, KeyProblem):
        parts = [*parts, *problem.key.split(".")]
    key = ".".join(str(p) for p in parts)
    source = origin.get(key, default_source)
    tail = f"; {hint}" if hint else ""
    if err["type"] == "extra_forbidden":
        allowed = _keys_at(model, parts[:-1])
        where = f"under '{'.'.join(str(p) for p in parts[:-1])}'" if len(parts) > 1 else "at the top level"
        known = f"keys allowed {where}: {', '.join(allowed)}" if allowed else "check the spelling"
        return f"{source}: unknown key '{key}'; {_suggest(str(parts[-1]), allowed)}{known}{tail}"
    if err["type"] == "missing":
        return f"{source}: required key '{key}' is missing; add it{tail}"
    msg = " ".join(err["msg"].removeprefix("Value error, ").split())  # one line, whatever a validator wrote
    if "[key]" in err["loc"]:
        return f"{source}: key '{key}' is not allowed here: {msg}; {_value_hint(err)}".rstrip("; ")
    value = err.get("input")
    if not isinstance(value, (dict, list, tuple, set)):
        what = f"has a bad value {short(value)}: {msg}"
    else:  # never print a whole mapping or list
        what = msg if isinstance(problem, ValueError) else f"is not valid: {msg}"
    fix = "" if isinstance(problem, ValueError) else _value_hint(err)
    where = f"key '{key}' " if key else ""
    return f"{source}: {where}{what}{'; ' + fix if fix else ''}"


def load_yaml_model(path: Path, model: type[BaseModel], hint: str | None = None) -> BaseModel:
    """Validate one YAML file against a model, with the same one-line errors as the main config; `hint` ends
    the message about an unknown or missing key (where to look up the keys this kind of file takes)."""
    data = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, {}, str(path), model, hint)) from None
