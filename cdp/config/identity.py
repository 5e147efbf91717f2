"""Identity resolution settings: conf/identity.yaml (rules, junk blocklists, guards, survivorship). The attributes
it may name are in cdp.config.identity_attributes, its probabilistic section in cdp.config.matching."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config.identity_attributes import (
    _DECLARED,
    DERIVED_ATTRIBUTES,
    IDENTITY_ATTRIBUTES,
    CustomAttribute,
    _check_attribute,
    _declared,
)
from cdp.config.loading import Strict, load_yaml_model
from cdp.config.matching import Probabilistic
from cdp.config.settings import Settings, conf_file

# A record holding none of these (after junk removal) is anonymous: it names nobody and gets no customer id.
DEFAULT_IDENTIFYING = ["email", "phone", "loyalty_id", "device_id", "cookie_id", "facebook_handle", "twitter_handle",
                       "instagram_handle", "review_handle", "birth_date", "street"]
# Attributes of gold.customers (golden record) chosen by survivorship.
GOLDEN_ATTRIBUTES = ("first_name", "last_name", "email", "phone", "birth_date", "gender", "street", "postal_code",
                     "city", "country", "loyalty_id")
# The rule name probabilistic (Splink) links carry in gold.identity_links.
PROBABILISTIC_RULE = "probabilistic"
# Shared by many people by nature: never auto-flagged as junk for being frequent.
DEFAULT_FREQUENCY_EXEMPT = ["first_name", "last_name", "first_name_match", "last_name_match", "full_name_display",
                            "birth_date", "gender", "street", "postal_code", "city", "region", "country"]


class Rule(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    attributes: list[str] = Field(min_length=1, description="Records link when ALL are equal and non-null")
    enabled: bool = True
    weight: float = Field(1.0, gt=0, le=1, description="Strength in (0, 1]; the weakest rules' edges go first when a cluster is too big")
    any_attribute: bool = Field(False, description="The attributes are one value space: equal values in ANY of them link")
    household_guard: bool = Field(False, description="A value naming incompatible people links only per person")

    @field_validator("attributes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("attributes must not repeat")
        return [_check_attribute(a, "attribute", derived=True) for a in value]


class HouseholdGuard(Strict):
    name_attribute: str = Field("first_name_match", description="Which attribute names the person")
    max_edit_distance: int = Field(1, ge=0, le=3, description="Typos tolerated between two names of one person")

    @field_validator("name_attribute")
    @classmethod
    def _known(cls, value: str) -> str:
        return _check_attribute(value, "household_guard.name_attribute")


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


_RESERVED_NAMES = frozenset({"record_id", "source", "channel", "source_record_key", "observed_at", "custom_attributes",
                             "defects", "customer_id", "component", "cluster", "full_name"})


class IdentityConfig(Strict):
    custom_attributes: dict[str, CustomAttribute] = Field(default_factory=dict, description=(
        "name -> kind and normalization of an identity attribute the project does not know"))
    deterministic_rules: list[Rule] = Field(min_length=1)
    probabilistic: Probabilistic | None = None
    identifying_attributes: list[str] = Field(default_factory=lambda: list(DEFAULT_IDENTIFYING), min_length=1)
    nicknames: dict[str, list[str]] = Field(default_factory=dict, description="full first name -> its nicknames")
    household_guard: HouseholdGuard = HouseholdGuard()
    junk: Junk = Junk()
    max_identifiers_per_customer: dict[str, int] = Field(default_factory=dict)
    max_cluster_size: int = Field(50, ge=2)
    birth_date_guard: bool = Field(True, description=(
        "Split a cluster holding two birth dates no typo explains (its name, address and probabilistic links "
        "dropped): a father and son of one name at one address. Off where birth dates carry large keying errors"))
    survivorship: dict[str, Survivorship] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _with_custom_attributes(cls, data, handler):
        """The sections are checked knowing the file's custom attributes (they may name them)."""
        names = tuple(data.get("custom_attributes") or {}) if isinstance(data, dict) else ()
        for name in names:
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"custom attribute name {name!r} must be lower case letters, digits and _")
            if name in IDENTITY_ATTRIBUTES + DERIVED_ATTRIBUTES or name in _RESERVED_NAMES or name.endswith("_key"):
                raise ValueError(f"custom attribute '{name}' clashes with a built-in column; give it another name")
        with _declared(names):
            return handler(data)

    @field_validator("max_identifiers_per_customer")
    @classmethod
    def _caps(cls, value: dict[str, int]) -> dict[str, int]:
        for key, cap in value.items():
            _check_attribute(key, "max_identifiers_per_customer attribute")
            if cap < 1:
                raise ValueError(f"max_identifiers_per_customer.{key} must be >= 1")
        return value

    @field_validator("identifying_attributes")
    @classmethod
    def _identifying(cls, value: list[str]) -> list[str]:
        return [_check_attribute(a, "identifying attribute") for a in value]

    @field_validator("nicknames")
    @classmethod
    def _nicknames(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for full, nicks in value.items():
            for n in nicks:
                if seen.setdefault(n, full) != full:
                    raise ValueError(f"nickname '{n}' is listed for both '{seen[n]}' and '{full}'")
        return value

    @field_validator("survivorship")
    @classmethod
    def _golden(cls, value: dict[str, Survivorship]) -> dict[str, Survivorship]:
        for key in value:
            if key not in GOLDEN_ATTRIBUTES + _DECLARED.get():
                raise ValueError(f"survivorship attribute '{key}' is neither in gold.customers "
                                 f"({', '.join(GOLDEN_ATTRIBUTES)}) nor a custom attribute")
        return value

    @model_validator(mode="after")
    def _rules(self) -> IdentityConfig:
        names = [r.name for r in self.deterministic_rules]
        if PROBABILISTIC_RULE in names:
            raise ValueError(f"rule name '{PROBABILISTIC_RULE}' is reserved for the probabilistic links")
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique: {names}")
        if not self.enabled_rules:
            raise ValueError("at least one deterministic rule must be enabled")
        return self

    @property
    def enabled_rules(self) -> list[Rule]:
        return [r for r in self.deterministic_rules if r.enabled]

    def rule_rank(self) -> dict[str, int]:
        """Strength order of enabled rules (probabilistic last among equals): 0 = strongest (highest weight,
        then earliest in the file)."""
        weighted = [(r.name, r.weight) for r in self.enabled_rules]
        if self.matching:
            weighted.append((PROBABILISTIC_RULE, self.matching.weight))
        ordered = sorted(enumerate(weighted), key=lambda iw: (-iw[1][1], iw[0]))
        return {name: rank for rank, (_, (name, _w)) in enumerate(ordered)}

    def rule_attributes(self) -> list[str]:
        """Every stored attribute an enabled rule uses, in first-use order."""
        return list(dict.fromkeys(a for r in self.enabled_rules for a in r.attributes if a in self.stored_attributes))

    def junk_attributes(self) -> list[str]:
        """Stored attributes whose junk values are nulled before matching: rules, comparisons, identifying ones."""
        used = [*self.rule_attributes(), *self.identifying_attributes, self.household_guard.name_attribute]
        if self.matching:
            used += [a for c in self.matching.comparisons for a in c.columns] + [a for b in self.matching.blocking for a in b]
        return list(dict.fromkeys(a for a in used if a in self.stored_attributes))

    @property
    def stored_attributes(self) -> tuple[str, ...]:
        """Attributes a record holds: silver.identity_records' columns and the custom attributes."""
        return IDENTITY_ATTRIBUTES + tuple(self.custom_attributes)

    @property
    def identifying(self) -> list[str]:
        """identifying_attributes and the custom attributes that identify (kind identifier by default)."""
        extra = [n for n, a in self.custom_attributes.items() if a.is_identifying]
        return list(dict.fromkeys([*self.identifying_attributes, *extra]))

    @property
    def frequency_exempt(self) -> list[str]:
        """junk.frequency_exempt and the custom attributes shared by many people by nature (not identifiers)."""
        extra = [n for n, a in self.custom_attributes.items() if a.kind != "identifier"]
        return list(dict.fromkeys([*self.junk.frequency_exempt, *extra]))

    @property
    def matching(self) -> Probabilistic | None:
        """The probabilistic section when present and enabled."""
        return self.probabilistic if self.probabilistic is not None and self.probabilistic.enabled else None

    def rule_names(self) -> list[str]:
        """Edge rules in strength order of the file: deterministic rules, then the probabilistic one."""
        return [r.name for r in self.enabled_rules] + ([PROBABILISTIC_RULE] if self.matching else [])


def identity_config_path(settings: Settings) -> Path:
    return conf_file("identity.yaml", settings)


def load_identity_config(settings: Settings | None = None, path: str | Path | None = None) -> IdentityConfig:
    """<settings.conf_dir>/identity.yaml (or `path`) validated; one-line ConfigError on any mistake."""
    path = conf_file("identity.yaml", settings, path)
    return load_yaml_model(Path(path), IdentityConfig, "see the comments in the project's conf/identity.yaml and docs/identity.md")
