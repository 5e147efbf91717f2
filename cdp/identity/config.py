"""Identity resolution settings: conf/identity.yaml (rules, junk blocklists, guards, survivorship)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config import Settings, Strict, load_yaml_model

# Columns of silver.identity_records a rule, a cap or a survivorship entry may name (see its contract).
IDENTITY_ATTRIBUTES = (
    "email", "email_raw", "phone", "phone_raw", "first_name", "last_name", "first_name_match", "last_name_match",
    "full_name_display", "birth_date", "gender", "street", "postal_code", "city", "region", "country",
    "loyalty_id", "device_id", "cookie_id", "facebook_handle", "twitter_handle", "instagram_handle", "review_handle",
)
# Attributes of gold.customers (golden record) chosen by survivorship.
GOLDEN_ATTRIBUTES = ("first_name", "last_name", "email", "phone", "birth_date", "gender", "street", "postal_code",
                     "city", "country", "loyalty_id")
# Shared by many people by nature: never auto-flagged as junk for being frequent.
DEFAULT_FREQUENCY_EXEMPT = ["first_name", "last_name", "first_name_match", "last_name_match", "full_name_display",
                            "birth_date", "gender", "street", "postal_code", "city", "region", "country"]


def _check_attribute(name: str, what: str) -> str:
    if name not in IDENTITY_ATTRIBUTES:
        raise ValueError(f"{what} '{name}' is not a column of silver.identity_records "
                         f"(choose from {', '.join(IDENTITY_ATTRIBUTES)})")
    return name


class Rule(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    attributes: list[str] = Field(min_length=1, description="Records link when ALL are equal and non-null")
    enabled: bool = True
    weight: float = Field(1.0, gt=0, description="Strength; the weakest rules' edges go first when a cluster is too big")

    @field_validator("attributes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("attributes must not repeat")
        return [_check_attribute(a, "attribute") for a in value]


class Junk(Strict):
    literals: dict[str, list[str]] = Field(default_factory=dict, description="attribute (or 'any') -> placeholder values")
    patterns: dict[str, list[str]] = Field(default_factory=dict, description="attribute (or 'any') -> regexes")
    max_records_per_value: int = Field(25, ge=2)
    frequency_exempt: list[str] = Field(default_factory=lambda: list(DEFAULT_FREQUENCY_EXEMPT))

    @field_validator("literals", "patterns")
    @classmethod
    def _keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in value:
            if key != "any":
                _check_attribute(key, "junk attribute")
        return value

    @field_validator("patterns")
    @classmethod
    def _regexes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, patterns in value.items():
            for p in patterns:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ValueError(f"junk pattern {p!r} for {key}: {exc}") from None
        return value

    def literals_for(self, attribute: str) -> list[str]:
        return sorted({str(v).lower() for v in [*self.literals.get(attribute, []), *self.literals.get("any", [])]
                       if v is not None})

    def patterns_for(self, attribute: str) -> list[str]:
        return [*self.patterns.get(attribute, []), *self.patterns.get("any", [])]


class Survivorship(Strict):
    rule: Literal["most_recent", "source_priority"] = "most_recent"
    sources: list[str] = Field(default_factory=list, description="source_priority: best first; others after, most recent")

    @model_validator(mode="after")
    def _sources_given(self) -> Survivorship:
        if self.rule == "source_priority" and not self.sources:
            raise ValueError("rule source_priority needs a non-empty 'sources' list")
        return self


class IdentityConfig(Strict):
    deterministic_rules: list[Rule] = Field(min_length=1)
    junk: Junk = Junk()
    max_identifiers_per_customer: dict[str, int] = Field(default_factory=dict)
    max_cluster_size: int = Field(50, ge=2)
    survivorship: dict[str, Survivorship] = Field(default_factory=dict)

    @field_validator("max_identifiers_per_customer")
    @classmethod
    def _caps(cls, value: dict[str, int]) -> dict[str, int]:
        for key, cap in value.items():
            _check_attribute(key, "max_identifiers_per_customer attribute")
            if cap < 1:
                raise ValueError(f"max_identifiers_per_customer.{key} must be >= 1")
        return value

    @field_validator("survivorship")
    @classmethod
    def _golden(cls, value: dict[str, Survivorship]) -> dict[str, Survivorship]:
        for key in value:
            if key not in GOLDEN_ATTRIBUTES:
                raise ValueError(f"survivorship attribute '{key}' is not in gold.customers ({', '.join(GOLDEN_ATTRIBUTES)})")
        return value

    @model_validator(mode="after")
    def _rules(self) -> IdentityConfig:
        names = [r.name for r in self.deterministic_rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique: {names}")
        if not self.enabled_rules:
            raise ValueError("at least one deterministic rule must be enabled")
        return self

    @property
    def enabled_rules(self) -> list[Rule]:
        return [r for r in self.deterministic_rules if r.enabled]

    def rule_rank(self) -> dict[str, int]:
        """Strength order of enabled rules: 0 = strongest (highest weight, then earliest in the file)."""
        ordered = sorted(enumerate(self.enabled_rules), key=lambda ir: (-ir[1].weight, ir[0]))
        return {r.name: rank for rank, (_, r) in enumerate(ordered)}

    def rule_attributes(self) -> list[str]:
        """Every attribute an enabled rule uses, in first-use order."""
        return list(dict.fromkeys(a for r in self.enabled_rules for a in r.attributes))


def identity_config_path(settings: Settings) -> Path:
    return Path(settings.conf_dir) / "identity.yaml"


def load_identity_config(settings: Settings | None = None, path: str | Path | None = None) -> IdentityConfig:
    """<settings.conf_dir>/identity.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    if path is None:
        if settings is None:
            raise ValueError("give settings or path")
        path = identity_config_path(settings)
    return load_yaml_model(Path(path), IdentityConfig)
