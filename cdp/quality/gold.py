"""The quality gate of gold tables: each output frame of a step is checked against its contract
(conf/tables/gold/<table>.yaml: schema, Great Expectations suite, relationships) before it is written.
Verdicts go to audit.quality_results and the quality docs; a critical failure stops the step, unwritten."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

from cdp.config import Settings
from cdp.config.contracts import load_contract
from cdp.frames import cache_columns, is_materialised, uncache
from cdp.io import Lakehouse
from cdp.quality.docs import render_quality_docs
from cdp.quality.gx_runner import QualityReport, record_quality, validate
from cdp.tables import Table


def gate_tables(lake: Lakehouse, settings: Settings, frames: dict[Table, DataFrame], run_id: str,
                step: str, materialise: Callable[[DataFrame], DataFrame] = cache_columns,
                partial: bool = False) -> dict[Table, DataFrame]:
    """Validate each frame against its table's contract and return the frames, materialised once (so the check
    and the write read the same rows). By default in the columnar cache, so each check reads only its columns:
    release them with cdp.frames.uncache once written. A step whose frames read a table it overwrites passes
    materialise=cut_lineage (a checkpoint is never recomputed from the table's newer version).
    A relationship names another table: the frame of it given here, or the table as it stands in the lakehouse.
    QualityGateFailed (one line) on a critical failure, nothing written. partial: the frames are the rows a run
    replaces, not whole tables (an incremental identity run's region), so row-count expectations do not apply."""
    made_here = [t for t, df in frames.items() if not is_materialised(df)]
    done = {t: df.transform(materialise) if t in made_here else df for t, df in frames.items()}
    related = {t.qualified: df for t, df in done.items()}
    reports: list[QualityReport] = []
    for table, df in done.items():
        contract = load_contract(settings, table)
        if partial:
            contract = contract.model_copy(update={"expectations": [
                e for e in contract.expectations if e.type != "row_count_between"]})
        for e in contract.expectations:
            target = (e.to or "").rpartition(".")[0]
            if target and target not in related:
                related[target] = lake.read(target)
        reports.append(validate(df, contract, run_id, related, samples_on_failure=True))
    docs = render_quality_docs(reports, settings.path(settings.paths.reports), lake.spark, step)
    record_quality(lake, reports)
    if not all(r.success for r in reports):
        uncache(*(done[t] for t in made_here))   # nothing will be written
    for report in reports:
        report.raise_for_critical(docs)
    return done
