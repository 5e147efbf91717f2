"""Customer 360 settings: conf/profile.yaml (as_of, age bands, RFM segments, complaints, consent, sentiment,
event types, history). Validated at load: one line naming the file and the key on a mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cdp.config.lexicon import merged_lexicon, read_lexicon
from cdp.config.loading import KeyProblem, Strict, load_yaml_model
from cdp.config.settings import Settings, conf_file
from cdp.errors import ConfigError

HINT = "see the comments in the project's conf/profile.yaml"
LEXICON_DIR = Path(__file__).resolve().parents[1] / "profile" / "lexicons"   # shipped beside cdp.profile.sentiment

# gold.customer_profile's columns in order (its contract, conf/tables/gold/customer_profile.yaml, types them).
PROFILE_COLUMNS = (
    "customer_id", "first_name", "last_name", "age", "age_band", "gender", "city", "postal_code", "country",
    "first_seen", "tenure_days", "last_interaction_ts", "last_interaction_channel", "interactions", "channels_used",
    "preferred_channel", "channel_mix", "recency_days", "frequency", "monetary", "average_order_value", "r_score",
    "f_score", "m_score", "fm_score", "rfm_segment", "inter_purchase_days_mean", "inter_purchase_days_stddev",
    "abandoned_carts", "failed_payments", "cancelled_orders", "emails_received", "email_open_rate",
    "email_click_rate", "email_unsubscribed", "callcenter_contacts", "complaints", "top_contact_reasons",
    "csat_latest", "csat_avg", "nps_latest", "nps_avg", "nps_category", "review_stars_avg", "reviews",
    "social_mentions", "suggestions", "sentiment_score", "marketing_consent", "marketing_consent_at",
    "email_unsubscribed_at", "as_of",
)
# Columns no change of which is history: the key itself, and as_of, which moves every run.
UNTRACKABLE = {"customer_id": "is the key of the history", "as_of": "changes every run"}
# fm_score is the mean of two integer scores 1..5: these are all its values.
FM_VALUES = tuple(x / 2 for x in range(2, 11))

EventTypes = list[str]


def _range(value: tuple[float, float], low: int, high: int, what: str) -> tuple[float, float]:
    lo, hi = value
    if not low <= lo <= hi <= high:
        raise ValueError(f"{what} range must be [min, max] with {low} <= min <= max <= {high}, got [{lo:g}, {hi:g}]")
    return value


class Segment(Strict):
    name: str = Field(min_length=1)
    r: tuple[int, int] = Field(description="Inclusive range of the R score, within 1..5")
    fm: tuple[float, float] = Field(description="Inclusive range of the FM score (mean of F and M), within 1..5")

    @field_validator("r")
    @classmethod
    def _r_within_scores(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _range(value, 1, 5, "r")

    @field_validator("fm")
    @classmethod
    def _fm_within_scores(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _range(value, 1, 5, "fm")

    def matches(self, r: int, fm: float) -> bool:
        return self.r[0] <= r <= self.r[1] and self.fm[0] <= fm <= self.fm[1]


class Rfm(Strict):
    segments: list[Segment] = Field(min_length=1, description="First match wins")
    no_purchase_segment: str = Field("No purchase", min_length=1)

    @model_validator(mode="after")
    def _names_and_coverage(self) -> Rfm:
        seen: set[str] = set()
        for i, s in enumerate(self.segments):
            if s.name in seen or s.name == self.no_purchase_segment:
                raise KeyProblem(f"segments.{i}.name", f"segment name '{s.name}' is used twice; names must be unique "
                                 "(and differ from no_purchase_segment)")
            seen.add(s.name)
        for r in range(1, 6):
            for fm in FM_VALUES:
                if not any(s.matches(r, fm) for s in self.segments):
                    raise KeyProblem("segments", f"no segment matches R score {r} with FM score {fm:g}; "
                                     "widen a rule's range so every R 1..5 and FM 1, 1.5, ..., 5 has a segment")
        return self

    @property
    def segment_names(self) -> list[str]:
        return [s.name for s in self.segments] + [self.no_purchase_segment]


class Consent(Strict):
    marketing_attribute: str = Field("marketing_consent", min_length=1,
                                     description="CRM attribute holding the email-marketing opt-in")
    unsubscribe_event_types: EventTypes = Field(default_factory=lambda: ["email_unsubscribe"], min_length=1)


DEFAULT_NEGATORS = ["not", "no", "never", "nobody", "nothing", "none", "neither", "nor", "without", "cannot", "cant",
                    "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "wont", "wouldnt", "shouldnt",
                    "couldnt", "havent", "hasnt", "hardly", "barely", "nunca", "jamas", "sin", "ni", "nadie", "nada",
                    "ningun", "ninguna", "ninguno", "tampoco"]


class Sentiment(Strict):
    lexicons: list[str] = Field(default_factory=lambda: ["en", "es"], min_length=1,
                                description="Shipped lexicon names, or .tsv paths (relative to the conf folder)")
    negators: list[str] = Field(default_factory=lambda: list(DEFAULT_NEGATORS))
    negation_window: int = Field(3, ge=1, le=10, description="Words after a negator whose score flips")
    channels: list[str] = Field(default_factory=lambda: ["survey", "suggestion_box", "review_site", "social"],
                                min_length=1, description="Channels whose text is the customer's own words")

    @field_validator("negators")
    @classmethod
    def _plain_words(cls, value: list[str]) -> list[str]:
        for w in value:
            if not w.isalpha() or w != w.lower() or not w.isascii():
                raise ValueError(f"negator {w!r} must be one lower-case word without accents or apostrophes "
                                 "(text is matched folded: don't -> dont, jamás -> jamas)")
        return value

    @field_validator("lexicons")
    @classmethod
    def _known_lexicons(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.endswith(".tsv") and not (LEXICON_DIR / f"{name}.tsv").is_file():
                shipped = ", ".join(sorted(p.stem for p in LEXICON_DIR.glob("*.tsv")))
                raise ValueError(f"lexicon '{name}' is not shipped (shipped: {shipped}); give a .tsv path for your own")
        return value

    def lexicon_paths(self, base_dir: Path | None = None) -> list[Path]:
        """The lexicon files, relative paths resolved from base_dir (the conf folder)."""
        out = []
        for name in self.lexicons:
            if not name.endswith(".tsv"):
                out.append(LEXICON_DIR / f"{name}.tsv")
            else:
                p = Path(name)
                out.append(p if p.is_absolute() or base_dir is None else Path(base_dir) / p)
        return out


class Events(Strict):
    email_sent: EventTypes = Field(default_factory=lambda: ["email_sent"])
    email_open: EventTypes = Field(default_factory=lambda: ["email_open"])
    email_click: EventTypes = Field(default_factory=lambda: ["email_click"])
    contact: EventTypes = Field(default_factory=lambda: ["call_inbound"])
    review: EventTypes = Field(default_factory=lambda: ["review"])
    social_post: EventTypes = Field(default_factory=lambda: ["social_post"])
    suggestion: EventTypes = Field(default_factory=lambda: ["suggestion"])
    company_initiated: EventTypes = Field(default_factory=lambda: ["email_sent", "email_bounce", "call_outbound"])


class History(Strict):
    tracked_columns: list[str] = Field(min_length=1, description="Profile columns whose change opens a new version")

    @field_validator("tracked_columns")
    @classmethod
    def _profile_columns(cls, value: list[str]) -> list[str]:
        for c in value:
            if c not in PROFILE_COLUMNS:
                raise ValueError(f"'{c}' is not a column of gold.customer_profile")
            if c in UNTRACKABLE:
                raise ValueError(f"'{c}' {UNTRACKABLE[c]}; it cannot open versions")
        if len(set(value)) != len(value):
            raise ValueError("a tracked column is listed twice")
        return value


class ProfileConfig(Strict):
    as_of: Literal["latest_event", "run_time"] = "latest_event"
    age_bands: list[int] = Field(default_factory=lambda: [18, 25, 35, 45, 55, 65], min_length=1,
                                 description="Increasing band edges in years")
    rfm: Rfm
    complaint_reasons: list[str] = Field(default_factory=lambda: ["complaint", "cancellation"])
    consent: Consent = Consent()
    sentiment: Sentiment = Sentiment()
    events: Events = Events()
    history: History

    @field_validator("age_bands")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] <= 0:
            raise ValueError("age band edges must be positive and strictly increasing, e.g. [18, 25, 35]")
        return value


def profile_config_path(settings: Settings) -> Path:
    return conf_file("profile.yaml", settings)


def load_profile_config(settings: Settings | None = None, path: str | Path | None = None) -> ProfileConfig:
    """<conf_dir>/profile.yaml (or `path`) validated, lexicon files included; one-line ConfigError on any mistake."""
    path = conf_file("profile.yaml", settings, path)
    config = load_yaml_model(path, ProfileConfig, HINT)
    assert isinstance(config, ProfileConfig)
    # Relative lexicon paths are anchored to the conf folder now, so the config means the same from any cwd.
    paths = config.sentiment.lexicon_paths(path.parent)
    sentiment = config.sentiment.model_copy(update={"lexicons": [str(p) for p in paths]})
    for i, p in enumerate(paths):
        try:
            read_lexicon(p)
        except ConfigError as exc:
            raise ConfigError(f"{path}: key 'sentiment.lexicons.{i}': {exc}") from None
    scored = [w for w in config.sentiment.negators if w in merged_lexicon(paths)]
    if scored:
        raise ConfigError(f"{path}: key 'sentiment.negators': '{scored[0]}' is also a lexicon word; a word either "
                          "flips the words after it or has a score, remove it from one of them")
    return config.model_copy(update={"sentiment": sentiment})
