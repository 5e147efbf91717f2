"""The run report: one self-contained HTML page (plots as inline SVG, no script, no external asset) of what a
pipeline run left in the lakehouse, written to <paths.reports>/run-report.html (local disk or object storage).

    location = write_run_report(lake, settings, run_id)    # the latest run when run_id is None

Every section reads its tables through the registry and aggregates in Spark: what reaches the driver is bounded
(histogram bins, the top paths, one row per step, size, rule, score cell, cohort cell, month, band or action),
never one row per customer or event. A section whose table is missing or empty says so in one line (a user may
run some steps only). The sections' data is fetched first (Spark jobs, several at a time: they are small and
latency-bound), then plotted with matplotlib's object API (no pyplot state), and
cdp/templates/run_report.html.j2 lays the page out, escaping every text.

This module assembles the page. The sections live in run_sections (run summary, identity, data quality),
customer_sections (funnel, journey paths, RFM, cohorts, satisfaction) and churn_sections (churn model, risk,
value, next best action); page_data holds what the template lays out, figures the shared plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import matplotlib

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.io import Lakehouse
from cdp.reports.churn_sections import (
    _action_section,
    _churn_model_section,
    _risk_section,
    _value_section,
    action_mix,
    churn_model_info,
    risk_histogram,
    value_distribution,
)
from cdp.reports.customer_sections import (
    _cohort_section,
    _funnel_section,
    _paths_section,
    _rfm_section,
    _satisfaction_section,
    cohort_retention,
    funnel_steps,
    rfm_cells,
    satisfaction_trend,
    segment_map,
    top_paths,
)
from cdp.reports.figures import STYLE, Colours
from cdp.reports.page_data import Absent, Section, _fetch, _time
from cdp.reports.run_sections import (
    _identity_data,
    _identity_section,
    _quality_data,
    _quality_section,
    _summary_section,
    run_info,
)
from cdp.storage import join, write_text
from cdp.tables import (
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    FUNNELS,
    JOURNEY_PATHS,
    KPI_COHORT_RETENTION,
    KPI_SATISFACTION,
    NEXT_BEST_ACTION,
)
from cdp.templating import render

TEMPLATE = "run_report.html.j2"
FILE_NAME = "run-report.html"
SECTION_IDS = ("run-summary", "identity", "data-quality", "funnel", "journey-paths", "rfm-segments",
               "cohort-retention", "satisfaction", "churn-model", "churn-risk", "customer-value", "next-best-action")
FETCH_THREADS = 4


@dataclass(frozen=True)
class RunReportPage:
    lakehouse: str
    run_id: str
    when: str
    generated: str
    sections: list[Section]


# ---------------------------------------------------------------- the page

def run_report_page(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str | None = None) -> RunReportPage:
    """The page data: one section per SECTION_IDS entry, in that order."""
    from cdp.config.churn import churn_config_path

    conf = ProjectConfig.of(conf)
    settings = conf.settings
    # a company without churn (a person register) may have no churn.yaml: its sections are absent anyway
    churn = conf.churn_as_written if churn_config_path(settings).is_file() else None
    bands = churn.scoring.band_names if churn is not None else []
    horizon = churn.value.horizon_days if churn is not None else 0
    info = run_info(lake, run_id)
    colours = Colours()
    # id -> (title, fetch: Spark and MLflow, run in threads; build: plots, in this thread)
    parts: dict[str, tuple[str, Callable[[], object], Callable[[object], Section]]] = {
        "identity": ("Identity resolution", lambda: _identity_data(lake), _identity_section),
        "data-quality": ("Data quality verdicts", lambda: _quality_data(lake, info.run_id), _quality_section),
        "funnel": ("Purchase funnel", lambda: _fetch(lake, FUNNELS, "journeys", lambda: funnel_steps(lake)),
                   lambda d: _funnel_section(d, colours)),
        "journey-paths": ("Top journey paths", lambda: _fetch(lake, JOURNEY_PATHS, "journeys", lambda: top_paths(lake)),
                          lambda d: _paths_section(d, colours)),
        "rfm-segments": ("RFM segment map", lambda: _fetch(lake, CUSTOMER_PROFILE, "profiles",
                                                           lambda: rfm_cells(lake)),
                         lambda d: _rfm_section(d, segment_map(conf.profile.rfm.segments))),
        "cohort-retention": ("Cohort retention", lambda: _fetch(lake, KPI_COHORT_RETENTION, "profiles",
                                                                lambda: cohort_retention(lake)), _cohort_section),
        "satisfaction": ("Customer satisfaction (NPS)", lambda: _fetch(lake, KPI_SATISFACTION, "profiles",
                                                                       lambda: satisfaction_trend(lake)),
                         _satisfaction_section),
        "churn-model": ("Churn model", lambda: churn_model_info(lake, settings, churn), _churn_model_section),
        "churn-risk": ("Churn risk distribution", lambda: _fetch(lake, CHURN_SCORES, "churn_scores",
                                                                 lambda: risk_histogram(lake)),
                       lambda d: _risk_section(d, bands)),
        "customer-value": ("Customer value", lambda: _fetch(lake, CUSTOMER_VALUE, "customer_value",
                                                            lambda: value_distribution(lake)),
                           lambda d: _value_section(d, horizon)),
        "next-best-action": ("Next best action", lambda: _fetch(lake, NEXT_BEST_ACTION, "next_best_action",
                                                                lambda: action_mix(lake)),
                             lambda d: _action_section(d, bands)),
    }
    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="cdp-report") as pool:
        fetched = {key: pool.submit(fetch) for key, (_, fetch, _) in parts.items()}
    sections = [_summary_section(lake, info)]
    with matplotlib.rc_context(STYLE):
        for key, (title, _, build) in parts.items():
            data = fetched[key].result()
            sections.append(Section(key, title, "", absent=data.line) if isinstance(data, Absent) else build(data))
    return RunReportPage(lakehouse=lake.root, run_id=info.run_id or "-", when=_time(info.started_at),
                         generated=_time(datetime.now(timezone.utc)) + " UTC", sections=sections)


def render_run_report(page: RunReportPage) -> str:
    return render(TEMPLATE, title=f"Run report - {page.run_id}", page=page)


def report_location(settings: Settings) -> str:
    """<paths.reports>/run-report.html (a local path or a URI)."""
    return join(settings.path(settings.paths.reports), FILE_NAME)


def write_run_report(lake: Lakehouse, conf: ProjectConfig | Settings, run_id: str | None = None,
                     location: str | None = None) -> str:
    """Write the report of run_id (the latest run when None) to location (default: report_location) and return
    where it went; a re-run overwrites it."""
    conf = ProjectConfig.of(conf)
    location = location or report_location(conf.settings)
    write_text(lake.spark, location, render_run_report(run_report_page(lake, conf, run_id)))
    return location
