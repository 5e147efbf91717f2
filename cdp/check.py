"""Load and validate every piece of configuration before Spark starts: settings, every source, identity rules
and every table contract. A mistake is one ConfigError line in well under a second (no JVM is started)."""

from __future__ import annotations

from cdp.config import Settings
from cdp.errors import ConfigError
from cdp.tables import IDENTITY_RECORDS, REGISTERED


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


def check_configuration(settings: Settings) -> list[tuple[str, str]]:
    """Validate all configuration; returns (what, summary) lines for `cdp check`, or raises ConfigError."""
    from cdp.identity.config import IDENTITY_ATTRIBUTES, identity_config_path, load_identity_config
    from cdp.ingest.sources import load_sources
    from cdp.journey.config import checked_journey_config, journey_config_path
    from cdp.quality.contracts import contract_path, load_contract

    sources = load_sources(settings)
    identity = load_identity_config(settings)
    journeys = checked_journey_config(settings, sources)
    from cdp.journey.attribution_config import load_attribution_config
    from cdp.profile.config import load_profile_config
    from cdp.profile.segments import load_segments

    attribution = load_attribution_config(settings)
    profile = load_profile_config(settings)
    segments = load_segments(settings)
    from cdp.ml.config import checked_churn_config, churn_config_path

    churn = checked_churn_config(settings, sources)
    contracts = {}
    for table in REGISTERED:
        path = contract_path(settings, table)
        if not path.is_file():
            raise ConfigError(f"{path}: the contract of {table} is missing; every table needs one "
                              f"(copy it from the project's conf/tables/{table.layer}/)")
        contracts[table] = contract = load_contract(settings, table)
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
    rules = [r.name for r in identity.enabled_rules]
    from cdp.privacy.pii import SALT_VARIABLE, pii_config_path, planned_copies

    copies = planned_copies(settings)
    return [
        ("settings", f"env {settings.env}, lakehouse {settings.path(settings.paths.lakehouse)}"),
        ("sources", f"{len(sources)} in {settings.conf_path(settings.ingest.sources_dir)}: "
                    f"{', '.join(s.name for s in sources)}"),
        ("identity", f"{identity_config_path(settings)}: {len(rules)} rules"
                     f"{', probabilistic matching' if identity.matching else ''}"),
        ("journeys", f"{journey_config_path(settings)}: {len(journeys.funnel.steps)} funnel steps, "
                     f"{len(journeys.purchases.event_types)} purchase event types"),
        ("attribution", f"models {', '.join(attribution.models)}, lookback {attribution.lookback_days} days"),
        ("profile", f"RFM in {len(profile.rfm.segments)} segments, as of {profile.as_of}"),
        ("segments", f"{len(segments.segments)} segments"),
        ("churn", f"{churn_config_path(settings)}: {len(churn.features)} features, {churn.snapshots.count} snapshots, "
                  f"{churn.definition.horizon_days}-day horizon, model {churn.model.name}, "
                  f"{len(churn.actions.rules)} action rules"),
        ("contracts", f"{len(contracts)} tables, each with its contract under {settings.conf_dir}/tables"),
        ("privacy", f"{pii_config_path(settings)}: {len(copies)} protected copies, salt from ${SALT_VARIABLE}"),
    ]
