"""Probabilistic matching settings: the `probabilistic` section of conf/identity.yaml (Splink comparisons,
blocking, training, the match threshold and vetoes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config.identity_attributes import _check_attribute
from cdp.config.loading import Strict

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
