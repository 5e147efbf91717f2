"""Quality docs: a self-contained HTML page (no external assets) rendered from the GX validation results.

<out_dir>/quality/index.html shows the reports just rendered and links to earlier runs (newest first, at
most 50); <out_dir>/quality/<run_id>.html keeps each run's page. The page data is computed here and laid
out by cdp/templates/quality.html.j2, which escapes every value. out_dir may be a local folder or a URI
(s3a://, abfss://, dbfs:/ ...) written through Hadoop with spark (or the active session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from cdp.quality.gx_runner import ExpectationResult, QualityReport
from cdp.storage import join, list_files, write_text
from cdp.templating import render

TEMPLATE = "quality.html.j2"
INDEX = "index.html"
MAX_EARLIER = 50
SAMPLE_SHOWN = 5
_RUN_PAGE = re.compile(r"^[A-Za-z0-9._-]+\.html$")  # names _safe() produces: never a scheme or a path


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    column: str
    level: str
    status: str  # pass / fail
    status_class: str  # pass / fail-row / fail-critical
    rows: int | None
    unexpected: int | None
    unexpected_percent: float | None
    detail: str
    sample: bool  # detail is a sample of failing values


@dataclass(frozen=True)
class Section:
    table: str
    run_id: str
    validated_at: str
    ok: bool
    expectations: int
    failed: int
    rows: list[Row]


@dataclass(frozen=True)
class Link:
    href: str
    label: str


@dataclass(frozen=True)
class QualityPage:
    ok: bool
    run_ids: str
    when: str
    tables: int
    earlier: list[Link]
    sections: list[Section]


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id) or "run"


def _time(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S %Z}"


def _detail(r: ExpectationResult) -> tuple[str, bool]:
    """(text, is_sample): the error, the row-count summary or a sample of failing values."""
    d = r.details
    if d.get("error"):
        return f"error: {d['error']}", False
    if r.type in ("row_count_between", "schema"):
        return r.summary(), False
    sample = d.get("partial_unexpected_list") or []
    if not sample or r.success:
        return "", False
    shown = ", ".join(repr(v) for v in sample[:SAMPLE_SHOWN]) + (", ..." if len(sample) > SAMPLE_SHOWN else "")
    return shown, True


def _row(r: ExpectationResult) -> Row:
    detail, sample = _detail(r)
    return Row(
        name=r.name, type=r.type, column=r.column or "", level=r.level,
        status="pass" if r.success else "fail", status_class="pass" if r.success else f"fail-{r.level}",
        rows=r.element_count, unexpected=r.unexpected_count, unexpected_percent=r.unexpected_percent,
        detail=detail, sample=sample,
    )


def _section(report: QualityReport) -> Section:
    return Section(
        table=report.table, run_id=report.run_id, validated_at=_time(report.validated_at), ok=report.success,
        expectations=len(report.results), failed=len(report.critical_failures) + len(report.row_failures),
        rows=[_row(r) for r in report.results],
    )


def quality_page(reports: list[QualityReport], earlier: list[str] | None = None) -> QualityPage:
    """The page data: one section per table (by name), the overall verdict and links to earlier run pages."""
    times = [r.validated_at for r in reports]
    return QualityPage(
        ok=all(r.success for r in reports),
        run_ids=", ".join(sorted({r.run_id for r in reports})) or "-",
        when=_time(max(times) if times else datetime.now(timezone.utc)),
        tables=len(reports),
        earlier=[Link(href=name, label=name.removesuffix(".html")) for name in earlier or []],
        sections=[_section(r) for r in sorted(reports, key=lambda r: r.table)],
    )


def earlier_runs(files: list[tuple[str, int]], current: set[str], limit: int = MAX_EARLIER) -> list[str]:
    """Run pages among (name, modified_ms) other than the index and current ones: newest first, at most limit."""
    pages = [(ms, name) for name, ms in files if name != INDEX and name not in current and _RUN_PAGE.match(name)]
    return [name for _, name in sorted(pages, reverse=True)[:limit]]


def render_quality_page(reports: list[QualityReport], title: str, earlier: list[str] | None = None) -> str:
    """One page's HTML (the index or a run's page); earlier = run page names to link, in order."""
    return render(TEMPLATE, title=title, page=quality_page(reports, earlier))


def render_quality_docs(reports: list[QualityReport], out_dir: str, spark=None, step: str | None = None) -> str:
    """Write <out_dir>/quality/index.html and one <run_id>[-<step>].html per run in reports; return the index path.

    out_dir is a local folder or a URI; URIs other than file: are written through Hadoop with spark
    (the active SparkSession when spark is None). `step` names the step whose tables these are, so each
    step of a run keeps its own page.
    """
    folder = join(out_dir, "quality")
    by_run: dict[str, list[QualityReport]] = {}
    for r in reports:
        by_run.setdefault(r.run_id, []).append(r)
    suffix = f"-{step}" if step else ""
    for run_id, group in by_run.items():
        write_text(spark, join(folder, f"{_safe(run_id + suffix)}.html"),
                   render_quality_page(group, f"Data quality - run {run_id}" + (f", {step}" if step else "")))
    current = {f"{_safe(run_id + suffix)}.html" for run_id in by_run}
    earlier = earlier_runs(list_files(spark, folder, ".html"), current)
    index = join(folder, INDEX)
    write_text(spark, index, render_quality_page(reports, "Data quality", earlier))
    return index
