"""The run report: each section's data on tiny hand-built Delta tables (values worked out by hand), the Sankey
geometry, missing tables, customer text that tries to inject markup, and (slow) the report of the 60-customer
demo pipeline opened in headless Chromium: no console error, every section there, a screenshot kept in
test-output/run-report.png."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import test_settings

from cdp.commands.runs import cmd_report
from cdp.config import PROJECT_ROOT
from cdp.io import Lakehouse
from cdp.reports.churn_sections import binned_counts, value_distribution
from cdp.reports.customer_sections import (
    JourneyPath,
    cohort_retention,
    funnel_steps,
    rfm_cells,
    sankey_flows,
    sankey_layout,
    top_paths,
)
from cdp.reports.run_report import (
    SECTION_IDS,
    render_run_report,
    report_location,
    run_report_page,
    write_run_report,
)
from cdp.reports.run_sections import cluster_size_counts, quality_verdicts, rule_contributions, run_info
from cdp.tables import (
    CHURN_SCORES,
    CUSTOMER_PROFILE,
    CUSTOMER_VALUE,
    FUNNELS,
    IDENTITY_CLUSTER_SIZES,
    IDENTITY_LINKS,
    JOURNEY_PATHS,
    KPI_COHORT_RETENTION,
    KPI_SATISFACTION,
    NEXT_BEST_ACTION,
    PIPELINE_RUNS,
    QUALITY_RESULTS,
)

XSS = "<script>alert(1)</script>"
DOLLARS = "$5 off $"          # an odd number of '$' would make matplotlib fail on mathtext
T = datetime(2026, 1, 1, 12, 0)


def _table(lake: Lakehouse, table, schema: str, rows: list[tuple]) -> None:
    lake.overwrite(lake.spark.createDataFrame(rows, schema), table)


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory):
    """Every table the report reads, a few rows each, customer text hostile where it can be."""
    lake = Lakehouse(spark, str(tmp_path_factory.mktemp("report") / "lakehouse"))
    _table(lake, IDENTITY_CLUSTER_SIZES, "size long, clusters long", [(1, 5), (2, 3), (25, 1), (30, 2)])
    _table(lake, IDENTITY_LINKS, "src string, dst string, rule string, customer_id string",
           [("r1", "r2", "email_exact", "c1"), ("r1", "r3", "email_exact", "c1"), ("r4", "r5", "email_exact", "c2"),
            ("r6", "r7", XSS, "c3")])
    lake.append(lake.rows(QUALITY_RESULTS, [
        ("run-1", "silver.orders", "old", "not_null", "x", "critical", False, 3, 1, 33.3, T),
        ("run-2", "silver.orders", "id_not_null", "not_null", "id", "critical", True, 3, 0, 0.0, T),
        ("run-2", "silver.orders", "amount_positive", "between", "amount", "row", False, 3, 1, 33.3, T),
        ("run-2", "gold.customers", "has_rows", "row_count_between", None, "critical", False, 0, None, None, T),
        ("run-2", "gold.customers", "id_unique", "unique", "customer_id", "critical", True, 0, 0, 0.0, T),
    ]), QUALITY_RESULTS)
    _table(lake, FUNNELS, "period date, channel string, step_number int, step string, entrants long", [
        (date(2025, 1, 1), "web", 1, "product_view", 10), (date(2025, 1, 1), "web", 2, "purchase", 4),
        (date(2025, 2, 1), "web", 1, "product_view", 6), (date(2025, 2, 1), XSS, 1, "product_view", 4),
        (date(2025, 2, 1), XSS, 2, "purchase", 1)])
    _table(lake, JOURNEY_PATHS, "outcome string, rank int, path string, journeys long, share double", [
        ("purchase", 1, "email > web:product_view > web:purchase", 6, 0.5),
        ("purchase", 2, f"{XSS} > web:purchase", 3, 0.25), ("purchase", 3, "(none)", 2, 0.1),
        ("silent", 1, f"social > {DOLLARS}", 4, 0.8), ("silent", 11, "email", 1, 0.01)])
    _table(lake, CUSTOMER_PROFILE, "customer_id string, r_score int, fm_score double, rfm_segment string", [
        ("c1", 5, 5.0, "Champions"), ("c2", 5, 4.5, "Champions"), ("c3", 1, 1.0, XSS), ("c4", None, None, "No purchase"),
        ("c5", None, None, "No purchase"), ("c6", 2, 3.5, DOLLARS)])
    _table(lake, KPI_COHORT_RETENTION,
           "cohort_month date, months_since_first int, customers long, active_customers long, retention_rate double",
           [(date(2025, m, 1), k, 10, 10 if k == 0 else 2, 1.0 if k == 0 else 0.2)
            for m in range(1, 4) for k in range(4 - m)])
    _table(lake, KPI_SATISFACTION, "month date, csat_responses long, csat_avg double, nps_responses long, nps double",
           [(date(2025, 1, 1), 3, 4.0, 4, 25.0), (date(2025, 2, 1), 0, None, 2, -50.0)])
    _table(lake, CHURN_SCORES, "customer_id string, churn_probability double, risk_band string, model_name string, "
           "model_version string", [("c1", 0.0, "low", "m", "1"), ("c2", 0.04, "low", "m", "1"),
                                    ("c3", 0.3, "medium", "m", "1"), ("c6", 1.0, "high", "m", "1")])
    _table(lake, CUSTOMER_VALUE, "customer_id string, expected_value double, p_alive double",
           [(f"c{i}", float(i), 0.5) for i in range(1, 101)])
    _table(lake, NEXT_BEST_ACTION, "customer_id string, risk_band string, action string, channel string, "
           "description string", [("c3", "medium", "win_back", "email", XSS), ("c6", "high", XSS, None, DOLLARS)])
    def event(run, level, step, status, started, ended=None, seconds=None, rows=(None, None), error=None):
        return (run, level, step, status, started, ended, seconds, *rows, None, error, "bronze,silver", None, "local",
                ended or started)

    lake.append(lake.rows(PIPELINE_RUNS, [
        event("run-1", "run", None, "succeeded", T, T, 9.0),
        event("run-2", "run", None, "running", datetime(2026, 1, 2)),
        event("run-2", "step", "bronze", "succeeded", datetime(2026, 1, 2, 0, 0, 1), datetime(2026, 1, 2, 0, 0, 5),
              4.0, (10, 9)),
        event("run-2", "step", "silver", "running", datetime(2026, 1, 2, 0, 0, 6)),
        event("run-2", "step", "silver", "failed", datetime(2026, 1, 2, 0, 0, 6), datetime(2026, 1, 2, 0, 0, 7), 1.0,
              error=XSS),
    ]), PIPELINE_RUNS)
    return lake


@pytest.fixture(scope="module")
def tiny_settings(conf_dir, tmp_path_factory):
    """The suite's configuration with reports and an (absent) MLflow store of its own."""
    return test_settings(conf_dir, tmp_path_factory.mktemp("report-settings"))


# ---------------------------------------------------------------- each section's data

def test_run_info_takes_the_latest_run_and_the_latest_event_of_each_step(tiny):
    info = run_info(tiny)
    assert (info.run_id, info.status, info.started_at) == ("run-2", "running", datetime(2026, 1, 2))
    assert [(s.step, s.status, s.seconds, s.rows_in, s.rows_out, s.error) for s in info.steps] == [
        ("bronze", "succeeded", 4.0, 10, 9, None), ("silver", "failed", 1.0, None, None, XSS)]
    assert (run_info(tiny, "run-1").status, run_info(tiny, "run-1").steps) == ("succeeded", [])


def test_without_a_run_log_the_run_is_the_latest_validated(lake):
    lake.append(lake.rows(QUALITY_RESULTS, [
        ("run-a", "silver.orders", "e", "not_null", "x", "critical", True, 1, 0, 0.0, T),
        ("run-b", "silver.orders", "e", "not_null", "x", "critical", True, 1, 0, 0.0, datetime(2026, 2, 1))]),
        QUALITY_RESULTS)
    info = run_info(lake)
    assert (info.run_id, info.started_at, info.steps) == ("run-b", datetime(2026, 2, 1), None)
    assert run_info(lake, "run-a").started_at == T


def test_identity_sizes_are_capped_and_rules_counted(tiny):
    assert cluster_size_counts(tiny) == [(1, 5), (2, 3), (20, 3)]
    assert rule_contributions(tiny) == [("email_exact", 3, 2), (XSS, 1, 1)]


def test_quality_verdicts_of_the_run_by_layer_with_failures_critical_first(tiny):
    q = quality_verdicts(tiny, "run-2")
    assert [(v.layer, v.table, v.expectations, v.passed, v.failed_critical, v.failed_row) for v in q.tables] == [
        ("silver", "silver.orders", 2, 1, 0, 1), ("gold", "gold.customers", 2, 1, 1, 0)]
    assert [(f.table, f.expectation, f.level) for f in q.failures] == [
        ("gold.customers", "has_rows", "critical"), ("silver.orders", "amount_positive", "row")]
    assert q.failed == 2


def test_funnel_is_summed_over_periods_per_channel(tiny):
    funnel = funnel_steps(tiny)
    assert [(s.number, s.step, s.entrants, s.by_channel) for s in funnel.steps] == [
        (1, "product_view", 20, {"web": 16, XSS: 4}), (2, "purchase", 5, {"web": 4, XSS: 1})]
    assert (funnel.first_period, funnel.last_period) == (date(2025, 1, 1), date(2025, 2, 1))


def test_top_paths_keep_the_top_ranks_split_into_elements(tiny):
    assert [(p.outcome, p.elements, p.journeys) for p in top_paths(tiny)] == [
        ("purchase", ["email", "web:product_view", "web:purchase"], 6), ("purchase", [XSS, "web:purchase"], 3),
        ("purchase", ["(none)"], 2), ("silent", ["social", DOLLARS], 4)]


def test_rfm_cells_and_cohorts(tiny):
    assert rfm_cells(tiny) == [(None, None, "No purchase", 2), (1, 1.0, XSS, 1), (2, 3.5, DOLLARS, 1),
                               (5, 4.5, "Champions", 1), (5, 5.0, "Champions", 1)]
    assert cohort_retention(tiny, max_cohorts=2) == [
        (date(2025, 2, 1), 0, 10, 1.0), (date(2025, 2, 1), 1, 10, 0.2), (date(2025, 3, 1), 0, 10, 1.0)]


def test_binned_counts_are_computed_in_spark_with_the_edges_in_the_end_bins(spark):
    frame = spark.createDataFrame([(v, g) for v, g in [(-1.0, "a"), (0.0, "a"), (0.49, "a"), (0.5, "b"),
                                                       (1.0, "b"), (7.0, "b"), (None, "b")]], "v double, g string")
    assert binned_counts(frame, "v", 0.0, 1.0, 2, "g") == [(0, "a", 3), (1, "b", 3)]
    assert binned_counts(frame, "v", 0.0, 1.0, 4) == [(0, None, 2), (1, None, 1), (2, None, 1), (3, None, 2)]


def test_value_distribution_stops_at_the_99th_percentile(tiny):
    dist = value_distribution(tiny, bins=10)
    assert (dist.customers, dist.total, dist.median, dist.p99, dist.mean_p_alive) == (100, 5050.0, 50.0, 99.0, 0.5)
    assert sum(n for _, n in dist.bins) == 100 and dist.bins[-1] == (9, 11)   # 90..100: the last bin


# ---------------------------------------------------------------- Sankey geometry

def test_sankey_right_aligns_paths_and_keeps_every_journey():
    paths = [JourneyPath("purchase", ["a", "b", "c"], 5, 0.5), JourneyPath("purchase", ["b", "c"], 3, 0.3),
             JourneyPath("purchase", ["x"], 2, 0.2)]
    nodes, links = sankey_flows(paths, "purchase")
    assert nodes == {(0, "a"): 5, (1, "b"): 8, (2, "c"): 8, (2, "x"): 2, (3, "purchase"): 10}
    assert links == {((0, "a"), (1, "b")): 5, ((1, "b"), (2, "c")): 8, ((2, "c"), (3, "purchase")): 8,
                     ((2, "x"), (3, "purchase")): 2}
    place, scale = sankey_layout(nodes, links)
    for node, (top, height) in place.items():
        assert top >= -1e-9 and top + height <= 1 + 1e-9
        assert height == pytest.approx(nodes[node] * scale)
    column_2 = sorted(place[k] for k in place if k[0] == 2)
    assert column_2[0][0] + column_2[0][1] < column_2[1][0]          # nodes of a column do not overlap
    assert place[(3, "purchase")][1] == pytest.approx(10 * scale)


# ---------------------------------------------------------------- the page

def test_missing_tables_each_say_so_in_one_line(lake, tiny_settings, tmp_path):
    page = run_report_page(lake, tiny_settings)
    assert [s.id for s in page.sections] == list(SECTION_IDS)
    absent = {s.id: s.absent for s in page.sections if s.absent}
    assert set(absent) == set(SECTION_IDS) - {"run-summary"}
    assert absent["funnel"] == f"{FUNNELS} is not in the lakehouse: run the journeys step to fill it."
    assert absent["churn-model"].startswith("No MLflow store at ")
    location = write_run_report(lake, tiny_settings, location=str(tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    assert location == str(tmp_path / "r.html") and all(f'<section id="{i}">' in html for i in SECTION_IDS)


def test_an_empty_table_says_it_is_empty(lake, tiny_settings):
    _table(lake, FUNNELS, "period date, channel string, step_number int, step string, entrants long", [])
    section = next(s for s in run_report_page(lake, tiny_settings).sections if s.id == "funnel")
    assert section.absent == f"{FUNNELS} is empty."


def test_cdp_report_writes_the_page_and_says_where(spark, tiny_settings, tmp_path, monkeypatch, capsys):
    import cdp.commands.runs

    monkeypatch.setattr(cdp.commands.runs, "command_session", lambda args, settings, app: spark)
    out = tmp_path / "out" / "report.html"
    assert cmd_report(SimpleNamespace(run_id=None, out=str(out), log=None, verbose=False), tiny_settings) == 0
    assert capsys.readouterr().out == f"report written to {out}\n"
    assert '<section id="run-summary">' in out.read_text()


def test_report_location_is_under_paths_reports(tiny_settings):
    assert report_location(tiny_settings) == str(Path(tiny_settings.path(tiny_settings.paths.reports),
                                                       "run-report.html"))


@pytest.fixture(scope="module")
def tiny_html(tiny, tiny_settings):
    return render_run_report(run_report_page(tiny, tiny_settings))


def test_customer_text_cannot_inject_markup(tiny_html):
    html = tiny_html
    assert "<script" not in html.lower()                       # the layout has no script: none came from data
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8   # tables and SVG text, escaped
    plots = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert sum("&lt;script&gt;alert(1)&lt;/script&gt;" in svg for svg in plots) >= 4   # funnel, paths, rules, actions
    assert not re.search(r"\son\w+\s*=", html)                  # no event handler attribute either
    assert DOLLARS in html                                      # '$' shown as written, not as mathtext


def test_every_plot_is_well_formed_svg_with_its_own_ids(tiny_html):
    svgs = re.findall(r"<svg\b.*?</svg>", tiny_html, flags=re.S)
    assert len(svgs) == 11
    ids = []
    for svg in svgs:
        root = ET.fromstring(svg)
        ids += [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))                            # several plots on one page: no id clash


def test_every_section_shows_its_data(tiny_html):
    for i in SECTION_IDS:
        assert f'<section id="{i}">' in tiny_html
    sections = dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', tiny_html, flags=re.S))
    assert 'class="absent"' in sections["churn-model"]        # no MLflow store in these settings
    assert all('class="absent"' not in body for key, body in sections.items() if key != "churn-model")
    assert "Steps of this run" in sections["run-summary"] and ">bronze<" in sections["run-summary"]
    assert "gate failed" in sections["data-quality"] and "has_rows" in sections["data-quality"]


@pytest.mark.slow   # renders the page a second time (~2 s)
def test_the_same_data_gives_the_same_page(tiny, tiny_settings, tiny_html):
    again = render_run_report(run_report_page(tiny, tiny_settings))
    generated = re.compile(r"report generated [^<]*")
    assert generated.sub("", again) == generated.sub("", tiny_html)


# ---------------------------------------------------------------- the demo pipeline's report in a browser

def _browser() -> str:
    found = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if found is None:
        pytest.skip("no Chromium on this machine (.ci/run installs it: apt-get install chromium)")
    return found


def chromium(url: str, profile, *flags: str) -> subprocess.CompletedProcess:
    """Headless Chromium on url with the page's console messages on stderr (lines with ':CONSOLE')."""
    base = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            "--enable-logging=stderr", "--v=0"]
    return subprocess.run([_browser(), *base, *flags, url], capture_output=True, text=True, timeout=120, check=True)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages (an uncaught error, console.error, ...) from Chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_console_messages_are_seen(tmp_path):
    """The check below can fail: a page with a script error shows up in Chromium's log."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    messages = console_messages(chromium(page.as_uri(), tmp_path / "chromium", "--dump-dom").stderr)
    assert any("Uncaught ReferenceError" in m for m in messages)


@pytest.mark.slow
@pytest.mark.process
def test_the_demo_report_renders_in_chromium_without_console_errors(pipeline_demo, tmp_path):
    _browser()
    demo_settings, lake, ctx = pipeline_demo
    settings = demo_settings.model_copy(update={"paths": demo_settings.paths.model_copy(
        update={"reports": str(tmp_path / "reports")})})   # the demo's own page stays as its run wrote it
    started = time.monotonic()
    location = write_run_report(lake, settings, ctx.run_id)
    seconds = time.monotonic() - started
    html = Path(location).read_text(encoding="utf-8")
    print(f"run report: {len(html) // 1024} KB in {seconds:.1f} s")
    assert location == report_location(settings) and f"run {ctx.run_id}" in html

    dumped = chromium(f"file://{location}", tmp_path / "chromium", "--dump-dom")
    assert console_messages(dumped.stderr) == []
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in dumped.stdout
    sections = dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', dumped.stdout, flags=re.S))
    assert all('class="absent"' not in body for body in sections.values()), "the whole pipeline ran"
    assert "data:image/png;base64," in sections["churn-model"] and "ROC-AUC" in sections["churn-model"]

    shot = PROJECT_ROOT / "test-output" / "run-report.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    chromium(f"file://{location}", tmp_path / "chromium", f"--screenshot={shot}", "--window-size=1280,12000")
    assert shot.exists() and shot.stat().st_size > 100_000
    # the page's first screen: the README's picture (docs/images/run-report.png is a copy of it)
    top = shot.with_name("run-report-top.png")
    top.unlink(missing_ok=True)
    chromium(f"file://{location}", tmp_path / "chromium", f"--screenshot={top}", "--window-size=1200,760")
    assert top.exists() and 20_000 < top.stat().st_size < shot.stat().st_size
