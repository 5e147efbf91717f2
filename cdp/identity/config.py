"""Identity resolution settings: conf/identity.yaml (rules, junk blocklists, guards, survivorship)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config import Settings, Strict, conf_file, load_yaml_model

# Columns of silver.identity_records a rule, a cap or a survivorship entry may name (see its contract).
IDENTITY_ATTRIBUTES = (
    "email", "email_raw", "phone", "phone_raw", "first_name", "last_name", "first_name_match", "last_name_match",
    "full_name_display", "birth_date", "gender", "street", "postal_code", "city", "region", "country",
    "loyalty_id", "device_id", "cookie_id", "facebook_handle", "twitter_handle", "instagram_handle", "review_handle",
)
# Derived while resolving (not stored in silver): the first name with nicknames mapped to the full form, and
# each social handle without its separators (ana.garcia_84 on one site is anagarcia84 on another).
HANDLE_ATTRIBUTES = ("facebook_handle", "twitter_handle", "instagram_handle", "review_handle")
DERIVED_ATTRIBUTES = ("first_name_canonical", *(f"{h}_key" for h in HANDLE_ATTRIBUTES))
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


# The custom attributes of the file being validated (IdentityConfig sets them before its sections are checked).
_DECLARED: ContextVar[tuple[str, ...]] = ContextVar("custom_identity_attributes", default=())


@contextmanager
def _declared(names: tuple[str, ...]) -> Iterator[None]:
    token = _DECLARED.set(names)
    try:
        yield
    finally:
        _DECLARED.reset(token)


def _check_attribute(name: str, what: str, derived: bool = False) -> str:
    custom = _DECLARED.get()
    known = IDENTITY_ATTRIBUTES + (DERIVED_ATTRIBUTES if derived else ()) + custom
    if name not in known:
        raise ValueError(f"{what} '{name}' is not a column of silver.identity_records nor a custom attribute; "
                         f"declare it under custom_attributes (kind, normalize) or choose from {', '.join(known)}")
    return name


AttributeKind = Literal["identifier", "name", "date", "postal_code", "text"]
Normalization = Literal["trim", "upper", "lower", "digits_only", "strip_punctuation", "fold_accents",
                        "collapse_spaces"]
# What a kind does to a value when `normalize` is not given (cdp.silver.canonical applies them).
DEFAULT_NORMALIZATION: dict[str, list[str]] = {
    "identifier": ["trim", "collapse_spaces"], "name": ["fold_accents", "lower", "strip_punctuation", "collapse_spaces"],
    "date": ["trim"], "postal_code": ["trim", "upper", "collapse_spaces"],
    "text": ["fold_accents", "lower", "collapse_spaces"],
}


class CustomAttribute(Strict):
    """An identity attribute the project does not know (national id, passport, membership number, ...): a source
    maps a column onto it under silver.identity.fields, and rules, comparisons, blocking, junk guards, caps and
    survivorship name it like a built-in attribute."""

    kind: AttributeKind = Field("identifier", description=(
        "identifier: an id that names one person (identifying, never frequency-exempt); name, date (parsed to a "
        "date: yyyy-MM-dd, yyyyMMdd or d/M/yyyy), postal_code, text: shared by many people by nature"))
    normalize: list[Normalization] | None = Field(None, description="Steps applied in order; default per kind")
    identifying: bool | None = Field(None, description="Does holding it make a record identifiable? Default: kind identifier")
    description: str = ""

    @property
    def steps(self) -> list[str]:
        return list(self.normalize) if self.normalize is not None else DEFAULT_NORMALIZATION[self.kind]

    @property
    def is_identifying(self) -> bool:
        return self.kind == "identifier" if self.identifying is None else self.identifying


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


# Comparison methods, named after Splink's comparison library (splink.comparison_library) in snake case; the
# short names of earlier versions of this file are kept as aliases.
COMPARISON_METHODS = {
    "exact_match": "ExactMatch: equal or not (term_frequency: a rare value counts more)",
    "levenshtein_at_thresholds": "LevenshteinAtThresholds: equal, then within each edit distance in thresholds",
    "damerau_levenshtein_at_thresholds": ("DamerauLevenshteinAtThresholds: like levenshtein, a transposition "
                                          "(12345 / 12354) is one edit: ids keyed by hand"),
    "jaro_winkler_at_thresholds": "JaroWinklerAtThresholds: equal, then Jaro-Winkler at or above each threshold",
    "jaro_at_thresholds": "JaroAtThresholds: equal, then Jaro similarity at or above each threshold",
    "name_comparison": "NameComparison: equal, then Jaro-Winkler levels (thresholds) for personal names",
    "forename_surname_comparison": ("ForenameSurnameComparison: `attribute` is the forename, `surname` the "
                                    "surname; both equal, swapped, then Jaro-Winkler levels"),
    "date_of_birth_comparison": "DateOfBirthComparison: equal, one typo, within a month, a year, ten years",
    "postcode_comparison": "postcodes: equal, then the same first N characters for each N in thresholds",
    "email_comparison": "EmailComparison: equal, equal user name, Jaro-Winkler on the address",
}
METHOD_ALIASES = {"exact": "exact_match", "levenshtein": "levenshtein_at_thresholds",
                  "damerau_levenshtein": "damerau_levenshtein_at_thresholds", "jaro_winkler": "jaro_winkler_at_thresholds",
                  "jaro": "jaro_at_thresholds", "name": "name_comparison", "date": "date_of_birth_comparison",
                  "postcode": "postcode_comparison", "email": "email_comparison",
                  "forename_surname": "forename_surname_comparison"}
ComparisonMethod = Literal[tuple(COMPARISON_METHODS)]  # type: ignore[valid-type]
_EDIT_METHODS = ("levenshtein_at_thresholds", "damerau_levenshtein_at_thresholds", "postcode_comparison")
_SIMILARITY_METHODS = ("jaro_winkler_at_thresholds", "jaro_at_thresholds", "name_comparison",
                       "forename_surname_comparison")


class Comparison(Strict):
    attribute: str
    method: ComparisonMethod = "exact_match"
    thresholds: list[float] = Field(default_factory=list, description=(
        "similarity levels (0-1) for jaro/jaro_winkler/name methods, edit distances for (damerau_)levenshtein, "
        "prefix lengths for postcode_comparison; empty: Splink's defaults"))
    term_frequency: bool = Field(False, description="Agreement on a rare value counts more than on a common one")
    surname: str | None = Field(None, description="forename_surname_comparison: the surname attribute")

    @field_validator("method", mode="before")
    @classmethod
    def _alias(cls, value):
        return METHOD_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("attribute")
    @classmethod
    def _known(cls, value: str) -> str:
        return _check_attribute(value, "comparison attribute", derived=True)

    @model_validator(mode="after")
    def _levels(self) -> Comparison:
        if self.method in _EDIT_METHODS and any(t < 1 or t != int(t) for t in self.thresholds):
            raise ValueError(f"{self.method} thresholds are whole numbers of edits or characters, at least 1")
        if self.method in _SIMILARITY_METHODS and any(not 0 < t < 1 for t in self.thresholds):
            raise ValueError(f"{self.method} thresholds are similarities between 0 and 1 (exclusive)")
        if (self.method == "forename_surname_comparison") != (self.surname is not None):
            raise ValueError("give 'surname' exactly with method forename_surname_comparison")
        if self.surname is not None:
            _check_attribute(self.surname, "comparison surname", derived=True)
        return self

    @property
    def columns(self) -> list[str]:
        """The attributes the comparison reads."""
        return [self.attribute, *([self.surname] if self.surname else [])]


class Training(Strict):
    u_max_pairs: float = Field(2e6, gt=0, description="Random pairs sampled to estimate u (non-match) probabilities")
    u_chunks: int = Field(1, ge=1, description="Spark jobs per comparison the u sample is scored in (Splink's "
                          "num_chunks; more chunks can stop early but each is a job)")
    seed: int = 7
    max_iterations: int = Field(10, ge=1, description="EM iterations per pass at most")
    em_max_pairs: float | None = Field(1e6, gt=0, description="Blocked pairs sampled per EM pass (bounds its cost)")
    prior_rules: list[list[str]] = Field(default_factory=list, description="Exact rules estimating the match prior")
    prior_recall: float = Field(0.8, gt=0, le=1, description="Share of true matches the prior_rules are thought to find")
    em_blocking: list[list[str]] = Field(min_length=1, description="Blocking rules of the EM passes estimating m")


class Probabilistic(Strict):
    enabled: bool = True
    require: list[str] = Field(default_factory=list, description="A record is compared only when it has ALL of these")
    require_any: list[str] = Field(default_factory=list, description="... and at least one of these")
    comparisons: list[Comparison] = Field(min_length=2)
    blocking: list[list[str]] = Field(min_length=1, description="Candidate pairs share all attributes of one of these")
    training: Training
    threshold: float = Field(0.99, gt=0, lt=1, description="match_probability at or above which a pair links")
    scores_floor: float = Field(0.5, gt=0, lt=1, description=(
        "Scored pairs at or above this probability are kept in gold.identity_match_scores (links and near "
        "misses), for `cdp eval identity` at other thresholds and for review"))
    weight: float = Field(0.5, gt=0, le=1, description="Edge strength in (0, 1] next to the deterministic rules (cluster cap)")
    must_not_disagree: list[str] = Field(default_factory=list, description="Comparisons whose outright disagreement vetoes a link")
    veto_similarity: float = Field(0.88, gt=0, le=1, description=(
        "A `name` comparison in must_not_disagree disagrees when Jaro-Winkler is below this and the names are "
        "not compatible as the household guard sees them (nickname, initial, first token, one typo)"))
    model: str | None = Field(None, description="A saved Splink model JSON to use instead of training")

    @field_validator("require", "require_any")
    @classmethod
    def _attrs(cls, value: list[str]) -> list[str]:
        return [_check_attribute(a, "probabilistic attribute", derived=True) for a in value]

    @model_validator(mode="after")
    def _vetoes(self) -> Probabilistic:
        compared = {c.attribute for c in self.comparisons}
        for a in self.must_not_disagree:
            if a not in compared:
                raise ValueError(f"must_not_disagree attribute '{a}' is not one of the comparisons")
        return self

    @field_validator("blocking")
    @classmethod
    def _blocks(cls, value: list[list[str]]) -> list[list[str]]:
        for block in value:
            if not block:
                raise ValueError("a blocking rule needs at least one attribute")
            for a in block:
                _check_attribute(a, "blocking attribute", derived=True)
        return value


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
