"""Load and validate the configuration of the steps a run will execute, before Spark starts: settings, every
source, each step's own file, every table contract. A mistake is one ConfigError line in well under a second (no
JVM is started).

Each configuration section belongs to the steps that read it (SECTION_STEPS). A section whose steps the company's
data cannot feed (cdp.capabilities: no purchases to value, no interactions for journeys) is not applicable: it is
not validated, its file may be absent, and `cdp check` says why. A section a planned, applicable step needs is
loaded and checked, and a missing file is named with what it configures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdp.capabilities import ACTIVITY, IDENTITY, INTERACTIONS, PURCHASES, Capabilities, capabilities
from cdp.config import CONF_FILES, Settings, conf_file
from cdp.config.churn import churn_config_path
from cdp.config.contracts import contract_path
from cdp.config.identity_attributes import IDENTITY_ATTRIBUTES
from cdp.config.journeys import (
    JourneyConfig,
    journey_config_path,
    named_event_types,
    purchase_event_types,
    unproduced,
)
from cdp.config.pii import SALT_VARIABLE, pii_config_path, planned_copies
from cdp.config.project import ProjectConfig
from cdp.config.sources import known_event_types
from cdp.errors import ConfigError
from cdp.tables import IDENTITY_RECORDS, REGISTERED

# step -> what the data must give for it to apply (cdp.capabilities)
STEP_NEEDS: dict[str, tuple[str, ...]] = {
    "identity": (IDENTITY,),
    "identity_eval": (IDENTITY,),
    "journeys": (IDENTITY, INTERACTIONS),
    "profiles": (IDENTITY, INTERACTIONS),
    "segments": (IDENTITY, INTERACTIONS),
    "churn_features": (IDENTITY, INTERACTIONS, ACTIVITY),
    "churn_model": (IDENTITY, INTERACTIONS, ACTIVITY),
    "churn_scores": (IDENTITY, INTERACTIONS, ACTIVITY),
    "customer_value": (IDENTITY, PURCHASES),
    "next_best_action": (IDENTITY, INTERACTIONS, ACTIVITY, PURCHASES),
    "protect_pii": (IDENTITY,),
}
# configuration section -> (its file, the steps that read it)
SECTION_STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "identity": ("identity.yaml", ("identity", "identity_eval")),
    "journeys": ("journeys.yaml", ("journeys", "profiles", "churn_features", "churn_scores", "customer_value",
                                   "next_best_action")),
    "attribution": ("attribution.yaml", ("journeys",)),
    "profile": ("profile.yaml", ("profiles", "segments", "churn_features", "churn_scores", "next_best_action")),
    "segments": ("segments.yaml", ("segments",)),
    "churn": ("churn.yaml", ("churn_features", "churn_model", "churn_scores", "customer_value", "next_best_action")),
    "privacy": ("pii.yaml", ("protect_pii",)),
}


@dataclass(frozen=True)
class Section:
    """One line of `cdp check`: a section ok (with what it holds) or not applicable (and why)."""

    name: str
    status: str            # ok | n/a
    summary: str


@dataclass
class CheckedConfiguration:
    conf: ProjectConfig                  # the sections as loaded and checked: a run goes on with them
    sections: list[Section] = field(default_factory=list)
    capabilities: Capabilities = field(default_factory=lambda: Capabilities({}))

    def not_applicable(self, step: str) -> str | None:
        """Why `step` does not apply to this company's data, or None."""
        return self.capabilities.missing(STEP_NEEDS.get(step, ()))


def _ddl_columns(ddl: str) -> list[tuple[str, str]]:
    """'a string, b map<string,long>' -> [('a', 'string'), ('b', 'map<string,long>')]: split on the commas outside
    a type's angle brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(ddl + ","):
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(ddl[start:i])
            start = i + 1
    return [tuple(part.strip().split(" ", 1)) for part in parts]  # type: ignore[misc]


def data_capabilities(conf: ProjectConfig, steps: list[str] | None = None) -> Capabilities:
    """What the configured sources can give: purchase types from the sources (and journeys.yaml), activity from
    churn.yaml. Only the files the planned `steps` (all: None) need are read; a present one that does not load is
    a ConfigError."""
    settings, sources = conf.settings, conf.sources
    needs = {n for step, needed in STEP_NEEDS.items() if steps is None or step in steps for n in needed}
    journeys_file, churn_file = conf_file("journeys.yaml", settings), conf_file("churn.yaml", settings)
    reads_journeys = bool(needs & {PURCHASES, ACTIVITY}) and journeys_file.is_file()
    journeys = conf.journeys_as_written if reads_journeys else JourneyConfig()
    churn = conf.churn_as_written if ACTIVITY in needs and churn_file.is_file() else None
    return capabilities(sources, known_event_types(sources), purchase_event_types(journeys, sources),
                        None if churn is None else churn.definition.activity_event_types)


def check_configuration(settings: Settings | ProjectConfig, steps: list[str] | None = None) -> CheckedConfiguration:
    """Validate the configuration `steps` need (all steps: None); one ConfigError line on the first mistake. The
    result's `conf` holds every section loaded: a run takes it on (cdp.pipeline.run_pipeline(conf=...))."""
    conf = settings if isinstance(settings, ProjectConfig) else ProjectConfig(settings)
    settings, sources = conf.settings, conf.sources
    result = CheckedConfiguration(conf, capabilities=data_capabilities(conf, steps))
    result.sections.append(Section("settings", "ok", f"env {settings.env}, lakehouse "
                                   f"{settings.path(settings.paths.lakehouse)}"))
    result.sections.append(Section("sources", "ok", f"{len(sources)} in {settings.conf_path(settings.ingest.sources_dir)}: "
                                   f"{', '.join(s.name for s in sources)}"))
    checkers = {"identity": _identity, "journeys": _journeys, "attribution": _attribution, "profile": _profile,
                "segments": _segments, "churn": _churn, "privacy": _privacy}
    for name, (file, readers) in SECTION_STEPS.items():
        wanted = [s for s in readers if steps is None or s in steps]
        applicable = [s for s in wanted if result.not_applicable(s) is None]
        path = conf_file(file, settings)
        if not applicable:
            if wanted:   # every reader planned is one the data cannot feed
                why = result.not_applicable(wanted[0])
                absent = "" if path.is_file() else f"; {path} is absent (it configures {CONF_FILES[file]})"
                result.sections.append(Section(name, "n/a", f"{why}{absent}"))
            continue
        if not path.is_file():
            raise ConfigError(f"{path}: not found; this file configures {CONF_FILES[file]}, which step(s) "
                              f"{', '.join(applicable)} need: copy the project's conf/{file} there, or leave the "
                              f"step(s) out (cdp run --steps ...)")
        result.sections.append(Section(name, "ok", checkers[name](conf)))
    result.sections.append(Section("contracts", "ok", _contracts(conf)))
    return result


# ---------------------------------------------------------------- one checker per section: the project's conf -> summary

def _identity(conf: ProjectConfig) -> str:
    rules = [r.name for r in conf.identity.enabled_rules]
    return f"{conf.identity_path}: {len(rules)} rules{', probabilistic matching' if conf.identity.matching else ''}"


def _journeys(conf: ProjectConfig) -> str:
    journeys = conf.journeys
    idle = unproduced(named_event_types(journeys), known_event_types(conf.sources))
    unused = f"; {len(idle)} event types named that no source produces (they match nothing): " \
             f"{', '.join(idle[:6])}{' ...' if len(idle) > 6 else ''}" if idle else ""
    return (f"{journey_config_path(conf.settings)}: {len(journeys.funnel.steps)} funnel steps, purchases "
            f"{', '.join(journeys.purchases.event_types) or 'none'}{unused}")


def _attribution(conf: ProjectConfig) -> str:
    return f"models {', '.join(conf.attribution.models)}, lookback {conf.attribution.lookback_days} days"


def _profile(conf: ProjectConfig) -> str:
    return f"RFM in {len(conf.profile.rfm.segments)} segments, as of {conf.profile.as_of}"


def _segments(conf: ProjectConfig) -> str:
    return f"{len(conf.segments.segments)} segments"


def _churn(conf: ProjectConfig) -> str:
    churn = conf.churn
    return (f"{churn_config_path(conf.settings)}: {len(churn.features)} features, {churn.snapshots.count} snapshots, "
            f"{churn.definition.horizon_days}-day horizon, model {churn.model.name}, "
            f"{len(churn.actions.rules)} action rules")


def _privacy(conf: ProjectConfig) -> str:
    return (f"{pii_config_path(conf.settings)}: {len(planned_copies(conf.settings, conf.pii))} protected copies, salt from "
            f"${SALT_VARIABLE}")


def _contracts(conf: ProjectConfig) -> str:
    settings, contracts = conf.settings, {}
    for table in REGISTERED:
        path = contract_path(settings, table)
        if not path.is_file():
            raise ConfigError(f"{path}: the contract of {table} is missing; every table needs one "
                              f"(copy it from the project's conf/tables/{table.layer}/)")
        contracts[table] = contract = conf.contract(table)
        if table.schema is not None:
            declared = [(c.name, c.type) for c in contract.columns]
            if declared != _ddl_columns(table.schema):
                raise ConfigError(f"{path}: columns {', '.join(f'{n} {t}' for n, t in declared)} differ from what "
                                  f"{table} holds ({table.schema}); restore the project's contract")
    stored = set(contracts[IDENTITY_RECORDS].column_names)
    unknown = [a for a in IDENTITY_ATTRIBUTES if a not in stored]
    if unknown:
        raise ConfigError(f"{contract_path(settings, IDENTITY_RECORDS)}: identity resolution reads column(s) "
                          f"{', '.join(unknown)}, which this contract does not declare")
    return f"{len(contracts)} tables, each with its contract under {settings.conf_dir}/tables"
