"""A project's configuration as one object: the settings and every step's section, each loaded and checked once,
the first time something asks for it. A run builds one (RunContext.conf) and hands its sections to the steps, so
conf/ is read once per run and a run checks only the sections of the steps it runs (what `cdp check` reports for
every section is cdp/check.py's)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from threading import Lock

from cdp.config.attribution import AttributionConfig, load_attribution_config
from cdp.config.churn import ChurnConfig, checked_churn_config, load_churn_config
from cdp.config.contracts import TableContract, load_contract
from cdp.config.identity import IdentityConfig, identity_config_path, load_identity_config
from cdp.config.journeys import JourneyConfig, checked_journey_config, load_journey_config
from cdp.config.pii import PiiConfig, load_pii_config
from cdp.config.profile import ProfileConfig, load_profile_config
from cdp.config.segments import SegmentsConfig, load_segments, segments_path
from cdp.config.settings import Settings
from cdp.config.sources import SourceSpec, load_sources


class ProjectConfig:
    """settings plus sources, identity, journeys, attribution, profile, segments, churn, pii and the table
    contracts, each a validated model loaded on first use (a mistake: the section's one-line ConfigError then)."""

    @classmethod
    def of(cls, conf: ProjectConfig | Settings) -> ProjectConfig:
        """`conf` itself, or settings wrapped (a caller outside a run: a notebook, a test, a command)."""
        return conf if isinstance(conf, ProjectConfig) else cls(conf)

    def __init__(self, settings: Settings, sources: list[SourceSpec] | None = None) -> None:
        """sources: the sources to use instead of the configured ones (a subset, a test's own)."""
        self.settings = settings
        if sources is not None:
            self.__dict__["sources"] = sources   # what the cached property would hold
        self._contracts: dict[str, TableContract] = {}
        self._lock = Lock()   # bronze and silver ask for contracts from a thread pool

    @cached_property
    def sources(self) -> list[SourceSpec]:
        return load_sources(self.settings)

    @cached_property
    def identity(self) -> IdentityConfig:
        return load_identity_config(self.settings)

    @property
    def identity_path(self) -> Path:
        return identity_config_path(self.settings)

    @cached_property
    def journeys_as_written(self) -> JourneyConfig:
        """conf/journeys.yaml as written, not yet checked against the sources (what the data can give is read
        from it before the checks: cdp.check.data_capabilities)."""
        return load_journey_config(self.settings)

    @cached_property
    def journeys(self) -> JourneyConfig:
        """conf/journeys.yaml checked against the sources, purchase event types completed by what they declare."""
        return checked_journey_config(self.settings, self.sources, self.journeys_as_written)

    @cached_property
    def attribution(self) -> AttributionConfig:
        return load_attribution_config(self.settings)

    @cached_property
    def profile(self) -> ProfileConfig:
        return load_profile_config(self.settings)

    @cached_property
    def segments(self) -> SegmentsConfig:
        return load_segments(self.settings)

    @property
    def segments_path(self) -> Path:
        return segments_path(self.settings)

    @cached_property
    def churn_as_written(self) -> ChurnConfig:
        return load_churn_config(self.settings)

    @cached_property
    def churn(self) -> ChurnConfig:
        """conf/churn.yaml with its activity event types checked against the sources."""
        return checked_churn_config(self.settings, self.sources, self.churn_as_written)

    @cached_property
    def pii(self) -> PiiConfig:
        return load_pii_config(self.settings)

    def contract(self, table) -> TableContract:
        """The contract of `table` (a Table or '<layer>.<name>') from <conf_dir>/tables."""
        name = str(table)
        with self._lock:
            if name not in self._contracts:
                self._contracts[name] = load_contract(self.settings, name)
            return self._contracts[name]

    @property
    def reports(self) -> str:
        """Where reports and the quality docs go (paths.reports)."""
        return self.settings.path(self.settings.paths.reports)

