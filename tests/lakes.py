"""Bronze and silver for a test's own landing folder, the way the pipeline's first two steps run them: the one
helper the tests that need a lakehouse of their own (not the demo's) land and build with."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cdp.config.project import ProjectConfig
from cdp.config.sources import load_sources
from cdp.ingest.bronze import land_all
from cdp.silver.step import build_silver


def land_and_build(lake, settings, landing: Path | str, run_id: str, *, specs=None, now: datetime | None = None,
                   lenient: bool = False):
    """Land every new file of `specs` (default: the settings' sources) under `landing`, then build silver:
    (bronze results, silver results). lenient: no share of quarantined rows refuses a batch (tests whose rows
    are mostly bad on purpose)."""
    now = now or datetime.now(timezone.utc)
    specs = load_sources(settings) if specs is None else specs
    if lenient:
        settings = settings.model_copy(update={"silver": settings.silver.model_copy(
            update={"max_quarantine_share": 1.0})})
    bronze = land_all(lake, specs, str(landing), run_id, now, settings.ingest.max_value_chars,
                      parallelism=settings.ingest.parallelism)
    return bronze, build_silver(lake, ProjectConfig(settings, specs), run_id, now)
