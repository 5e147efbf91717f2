"""Quality docs: a self-contained HTML page (no external assets) rendered from the GX validation results.

<out_dir>/quality/index.html shows the reports just rendered and links to earlier runs;
<out_dir>/quality/<run_id>.html keeps each run's page.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from cdp.quality.gx_runner import ExpectationResult, QualityReport

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933;background:#fafbfc}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin:1.8rem 0 .4rem}
.meta{color:#52606d;font-size:.9rem} table{border-collapse:collapse;width:100%;background:#fff;font-size:.88rem}
th,td{border:1px solid #d9e2ec;padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f4f8} td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:600;text-transform:uppercase;border-radius:3px;padding:.1rem .45rem;color:#fff}
.pass{background:#2f8132} .fail-row{background:#c77c02} .fail-critical{background:#c62828}
.badge{display:inline-block;margin-left:.5rem;font-size:.8rem} .sample{color:#52606d;font-family:monospace}
.legend{font-size:.85rem;color:#52606d;margin:.6rem 0}
"""


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id) or "run"


def _status(r: ExpectationResult) -> str:
    if r.success:
        return '<span class="status pass">pass</span>'
    return f'<span class="status fail-{escape(r.level)}">fail</span>'


def _num(value) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def _detail(r: ExpectationResult) -> str:
    d = r.details
    if d.get("error"):
        return f"error: {escape(str(d['error']))}"
    if r.type == "row_count_between":
        return escape(r.summary())
    sample = d.get("partial_unexpected_list") or []
    if not sample or r.success:
        return ""
    shown = ", ".join(repr(v) for v in sample[:5]) + (", ..." if len(sample) > 5 else "")
    return f'<span class="sample">{escape(shown)}</span>'


def _section(report: QualityReport) -> str:
    gate = ('<span class="status pass badge">gate passed</span>' if report.success
            else '<span class="status fail-critical badge">gate failed</span>')
    rows = "\n".join(
        f"<tr><td>{escape(r.name)}</td><td>{escape(r.type)}</td><td>{escape(r.column or '')}</td>"
        f"<td>{escape(r.level)}</td><td>{_status(r)}</td><td class='num'>{_num(r.element_count)}</td>"
        f"<td class='num'>{_num(r.unexpected_count)}</td><td class='num'>{_num(r.unexpected_percent)}</td>"
        f"<td>{_detail(r)}</td></tr>"
        for r in report.results
    )
    failed = len(report.critical_failures) + len(report.row_failures)
    return f"""
<section id="{escape(report.table)}">
<h2>{escape(report.table)}{gate}</h2>
<div class="meta">run {escape(report.run_id)} &middot; validated {report.validated_at:%Y-%m-%d %H:%M:%S %Z}
 &middot; {len(report.results)} expectations, {failed} failed</div>
<table>
<tr><th>expectation</th><th>type</th><th>column</th><th>level</th><th>status</th><th>rows</th>
<th>unexpected</th><th>unexpected %</th><th>details / sample of failing values</th></tr>
{rows}
</table>
</section>"""


def _page(reports: list[QualityReport], title: str, earlier: list[str]) -> str:
    run_ids = sorted({r.run_id for r in reports})
    times = [r.validated_at for r in reports]
    when = max(times) if times else datetime.now(timezone.utc)
    ok = all(r.success for r in reports)
    verdict = ('<span class="status pass badge">all gates passed</span>' if ok
               else '<span class="status fail-critical badge">a quality gate failed</span>')
    links = ""
    if earlier:
        items = " ".join(f'<a href="{escape(name)}">{escape(name[:-5])}</a>' for name in earlier)
        links = f'<p class="meta">Earlier runs: {items}</p>'
    body = "\n".join(_section(r) for r in sorted(reports, key=lambda r: r.table)) or "<p>No tables validated.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{escape(title)}{verdict}</h1>
<div class="meta">run {escape(', '.join(run_ids) or '-')} &middot; {when:%Y-%m-%d %H:%M:%S %Z}
 &middot; {len(reports)} table(s)</div>
<p class="legend"><b>row</b> expectations quarantine failing rows and the batch proceeds;
<b>critical</b> ones stop the pipeline. Counts come from Great Expectations.</p>
{links}
{body}
</body></html>
"""


def render_quality_docs(reports: list[QualityReport], out_dir: str) -> str:
    """Write <out_dir>/quality/index.html and one <run_id>.html per run in reports; return the index path."""
    folder = Path(out_dir) / "quality"
    folder.mkdir(parents=True, exist_ok=True)
    by_run: dict[str, list[QualityReport]] = {}
    for r in reports:
        by_run.setdefault(r.run_id, []).append(r)
    for run_id, group in by_run.items():
        (folder / f"{_safe(run_id)}.html").write_text(
            _page(group, f"Data quality - run {run_id}", []), encoding="utf-8"
        )
    current = {f"{_safe(run_id)}.html" for run_id in by_run}
    earlier = sorted(
        (p for p in folder.glob("*.html") if p.name != "index.html" and p.name not in current),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    index = folder / "index.html"
    index.write_text(_page(reports, "Data quality", [p.name for p in earlier[:50]]), encoding="utf-8")
    return str(index)
