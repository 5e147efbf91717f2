"""Reports: HTML pages rendered from templates shipped in cdp/templates/, written to local disk or object storage.

    html = render("quality.html.j2", title="Data quality", page=page)   # data computed first, then laid out
    write_text(spark, "s3a://bucket/reports/quality/index.html", html)  # Hadoop FS for any URI scheme
    list_files(spark, "s3a://bucket/reports/quality", ".html")          # [(name, modified_ms), ...]

Page templates extend base.html.j2 (self-contained: shared CSS inline, no scripts, no external assets)
and may import the macros of _macros.html.j2.
"""

from cdp.reports.storage import is_local, join, list_files, read_text, write_text
from cdp.reports.templating import FILTERS, environment, render

__all__ = ["FILTERS", "environment", "is_local", "join", "list_files", "read_text", "render", "write_text"]
