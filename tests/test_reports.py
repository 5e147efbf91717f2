"""Reports: the template layer (filters, escaping, self-contained layout), storage (pathlib and a real Hadoop
FileSystem through the test SparkSession's JVM) and the quality docs written through both."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from cdp import storage
from cdp.quality import ExpectationResult, QualityReport, render_quality_docs
from cdp.quality.docs import earlier_runs, render_quality_page
from cdp.storage import join, list_files, read_text, write_text
from cdp.templating import FILTERS, render

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def _report(table="silver.people", run_id="run-1", name="csat_in_range", column="csat", sample=(9,)):
    results = [
        ExpectationResult("has_rows", "row_count_between", None, "critical", True, 6, details={"min": 1, "max": None}),
        ExpectationResult(name, "between", column, "row", False, 6, len(sample), 100 * len(sample) / 6,
                          {"partial_unexpected_list": list(sample)}),
    ]
    return QualityReport(table, run_id, WHEN, True, results)


# ---------------------------------------------------------------- templating

@pytest.mark.parametrize("name, args, expected", [
    ("thousands", (1234567,), "1,234,567"),
    ("thousands", (None,), ""),
    ("decimal", (1234.5,), "1,234.50"),
    ("decimal", (2 / 3, 3), "0.667"),
    ("decimal", (None,), ""),
    ("percent", (0.1234,), "12.3%"),
    ("percent", (0.5, 0), "50%"),
    ("percent", (None,), ""),
], ids=["int", "int-none", "float", "float-digits", "float-none", "fraction", "fraction-digits", "pct-none"])
def test_filters(name, args, expected):
    assert FILTERS[name](*args) == expected


def test_missing_context_is_an_error_not_an_empty_page():
    with pytest.raises(UndefinedError):
        render("quality.html.j2", title="Data quality")


@pytest.mark.parametrize("report", [
    _report(sample=(XSS,)),
    _report(name=XSS),
    _report(table=XSS),
    _report(run_id=XSS),
    _report(column=XSS),
], ids=["failing-value", "expectation-name", "table-name", "run-id", "column"])
def test_customer_text_is_escaped(report):
    html = render_quality_page([report], "Data quality")
    assert XSS not in html
    assert ESCAPED in html


@pytest.mark.parametrize("fragment", ["<script", "http://", "https://", "<link", "src=", "@import"],
                         ids=["script", "http", "https", "stylesheet-link", "src", "css-import"])
def test_page_is_self_contained(fragment):
    assert fragment not in render_quality_page([_report()], "Data quality", ["run-0.html"])


def test_page_extends_the_base_layout():
    assert render_quality_page([], "Data quality").startswith("<!DOCTYPE html>")


# ---------------------------------------------------------------- earlier runs

@pytest.mark.parametrize("files, expected", [
    ([("a.html", 1), ("b.html", 3), ("c.html", 2)], ["b.html", "c.html", "a.html"]),
    ([("a.html", 5), ("b.html", 5)], ["b.html", "a.html"]),
    ([("index.html", 9), ("a.html", 1)], ["a.html"]),
    ([("run-now.html", 9), ("a.html", 1)], ["a.html"]),
    ([("javascript:alert(1).html", 9), ("a b.html", 8), ("a.html", 1)], ["a.html"]),
], ids=["newest-first", "tie-by-name", "no-index", "no-current-run", "only-safe-names"])
def test_earlier_runs(files, expected):
    assert earlier_runs(files, current={"run-now.html"}) == expected


def test_earlier_runs_keeps_the_newest_fifty():
    files = [(f"run-{i:03d}.html", i) for i in range(60)]
    assert earlier_runs(files, current=set()) == [f"run-{i:03d}.html" for i in range(59, 9, -1)]


# ---------------------------------------------------------------- storage

@pytest.mark.parametrize("uri, parts, expected", [
    ("/data/reports", ("quality", "index.html"), "/data/reports/quality/index.html"),
    ("s3a://bucket/reports/", ("quality",), "s3a://bucket/reports/quality"),
    ("abfss://c@acct.dfs.core.windows.net/r", ("quality",), "abfss://c@acct.dfs.core.windows.net/r/quality"),
    ("dbfs:/reports", ("quality",), "dbfs:/reports/quality"),
    ("file:///tmp/r", ("quality",), "file:///tmp/r/quality"),
], ids=["path", "s3a", "abfss", "dbfs", "file-uri"])
def test_join(uri, parts, expected):
    assert join(uri, *parts) == expected


@pytest.mark.parametrize("uri, local", [
    ("/tmp/r", True), ("r/relative", True), ("file:///tmp/r", True), ("file:/tmp/r", True),
    ("s3a://b/r", False), ("abfss://c@a.dfs.core.windows.net/r", False), ("hdfs://nn/r", False),
    ("dbfs:/r", False),
], ids=["abs", "relative", "file-uri", "file-short", "s3a", "abfss", "hdfs", "dbfs"])
def test_is_local(uri, local):
    assert storage.is_local(uri) is local


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_local_write_creates_folders_and_writes_utf8(tmp_path, as_uri):
    target = tmp_path / "a" / "b" / "page.html"
    write_text(None, target.as_uri() if as_uri else str(target), "Sørensen €")
    assert target.read_bytes() == "Sørensen €".encode()


def test_local_list_files_filters_by_suffix_and_skips_hidden(tmp_path):
    for name in ("a.html", "b.txt", ".a.html.crc", "_SUCCESS.html"):
        (tmp_path / name).write_text("x")
    os.utime(tmp_path / "a.html", (1_700_000_000, 1_700_000_000))
    assert list_files(None, str(tmp_path), ".html") == [("a.html", 1_700_000_000_000)]


def test_list_files_of_a_missing_folder_is_empty(tmp_path):
    assert list_files(None, str(tmp_path / "nope"), ".html") == []


# ---------------------------------------------------------------- Hadoop FileSystem (real JVM)

@pytest.mark.parametrize("given", [True, False], ids=["spark-given", "active-session"])
def test_hadoop_write_creates_folders_and_writes_utf8(spark, tmp_path, given):
    target = tmp_path / "a" / "page.html"
    write_text(spark if given else None, target.as_uri(), "Sørensen €", via_hadoop=True)
    assert target.read_bytes() == "Sørensen €".encode()


def test_hadoop_write_goes_through_the_jvm(spark, tmp_path):
    write_text(spark, (tmp_path / "page.html").as_uri(), "x", via_hadoop=True)
    assert (tmp_path / ".page.html.crc").is_file()  # Hadoop's checksummed LocalFileSystem wrote it, not pathlib


def test_hadoop_write_overwrites(spark, tmp_path):
    uri = (tmp_path / "page.html").as_uri()
    write_text(spark, uri, "first, and longer", via_hadoop=True)
    write_text(spark, uri, "second", via_hadoop=True)
    assert read_text(spark, uri, via_hadoop=True) == "second"


def test_hadoop_list_files(spark, tmp_path):
    write_text(spark, (tmp_path / "a.html").as_uri(), "x", via_hadoop=True)  # leaves .a.html.crc beside it
    write_text(spark, (tmp_path / "b.txt").as_uri(), "x", via_hadoop=True)
    os.utime(tmp_path / "a.html", (1_700_000_000, 1_700_000_000))
    assert list_files(spark, tmp_path.as_uri(), ".html", via_hadoop=True) == [("a.html", 1_700_000_000_000)]


def test_hadoop_list_files_of_a_missing_folder_is_empty(spark, tmp_path):
    assert list_files(spark, (tmp_path / "nope").as_uri(), ".html", via_hadoop=True) == []


@pytest.fixture()
def hadoop_only(monkeypatch):
    """Every URI counts as remote: render_quality_docs goes through Hadoop as it would on s3a:// or abfss://."""
    monkeypatch.setattr(storage, "is_local", lambda uri: False)


def test_quality_docs_through_hadoop(spark, tmp_path, hadoop_only):
    out = tmp_path.as_uri()
    render_quality_docs([_report(run_id="run-1")], out, spark=spark)
    render_quality_docs([_report(run_id="run-2")], out, spark=spark)
    for name, t in (("run-1.html", 1_700_000_000), ("run-2.html", 1_700_000_100)):
        os.utime(tmp_path / "quality" / name, (t, t))
    index = render_quality_docs([_report(run_id="run-3")], out, spark=spark)
    assert index == f"{out}/quality/index.html"
    html = Path(tmp_path / "quality" / "index.html").read_text(encoding="utf-8")
    assert html.index('href="run-2.html"') < html.index('href="run-1.html"')
