"""The quality gate of gold tables: each output frame of a step is checked against its contract
(conf/tables/gold/<table>.yaml: schema, Great Expectations suite, relationships) before it is written.
Verdicts go to audit.quality_results and the quality docs; a critical failure stops the step, unwritten."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame

from cdp.config import Settings
from cdp.config.project import ProjectConfig
from cdp.frames import cache_columns, is_materialised, uncache
from cdp.io import Lakehouse
from cdp.quality.docs import render_quality_docs
from cdp.quality.gx_runner import QualityReport, record_quality, validate
from cdp.tables import Table


def gate_tables(lake: Lakehouse, conf: ProjectConfig | Settings, frames: dict[Table, DataFrame], run_id: str,
                step: str, materialise: Callable[[DataFrame], DataFrame] = cache_columns,
                partial: bool = False, internal: tuple[str, ...] = ()) -> dict[Table, DataFrame]:
    """Validate each frame against its table's contract and return the frames, materialised once (so the check
    and the write read the same rows). By default in the columnar cache, so each check reads only its columns:
    release them with cdp.frames.uncache once written. A step whose frames read a table it overwrites passes
    materialise=cut_lineage (a checkpoint is never recomputed from the table's newer version).
    A relationship names another table: the frame of it given here, or the table as it stands in the lakehouse.
    QualityGateFailed (one line) on a critical failure, nothing written. partial: the frames are the rows a run
    replaces, not whole tables (an incremental identity run's region), so row-count expectations do not apply.
    internal: columns of the frames that are not the table's (silver's DQ reason), left out of the schema check."""
    if not frames:
        return {}
    conf = ProjectConfig.of(conf)
    made_here = [t for t, df in frames.items() if not is_materialised(df)]
    done = {t: df.transform(materialise) if t in made_here else df for t, df in frames.items()}
    related = {t.qualified: df for t, df in done.items()}
    reports: list[QualityReport] = []
    for table, df in done.items():
        contract = conf.contract(table)
        if partial:
            contract = contract.model_copy(update={"expectations": [
                e for e in contract.expectations if e.type != "row_count_between"]})
        for e in contract.expectations:
            target = (e.to or "").rpartition(".")[0]
            if target and target not in related:
                related[target] = lake.read(target)
        reports.append(validate(df, contract, run_id, related, internal))
    docs = render_quality_docs(reports, conf.reports, lake.spark, step)
    record_quality(lake, reports)
    if not all(r.success for r in reports):
        uncache(*(done[t] for t in made_here))   # nothing will be written
    for report in reports:
        report.raise_for_critical(docs)
    return done


def overwrite_whole(lake: Lakehouse, table: Table, frame: DataFrame) -> None:
    lake.overwrite(frame, table)


@contextmanager
def published(lake: Lakehouse, conf: ProjectConfig | Settings, frames: dict[Table, DataFrame], run_id: str, step: str,
            write: Callable[[Lakehouse, Table, DataFrame], None] = overwrite_whole,
            materialise: Callable[[DataFrame], DataFrame] = cache_columns,
            **gate_options) -> Iterator[dict[Table, DataFrame]]:
    """A step's frames gated, written, then released: each validated against its table's contract (a critical
    failure raises QualityGateFailed and nothing is written), written in the order given (`write`; default:
    overwritten whole), and yielded, materialised, for the step's counts; uncached when the block ends.
    gate_options: gate_tables' (partial, internal).

        with published(lake, conf, {CUSTOMER_VALUE: value}, run_id, "customer_value") as written:
            customers = written[CUSTOMER_VALUE].count()
    """
    gated = gate_tables(lake, conf, frames, run_id, step, materialise, **gate_options)
    try:
        for table, frame in gated.items():
            write(lake, table, frame)
        yield gated
    finally:
        uncache(*gated.values())


def publish(lake: Lakehouse, conf: ProjectConfig | Settings, frames: dict[Table, DataFrame], run_id: str, step: str,
            write: Callable[[Lakehouse, Table, DataFrame], None] = overwrite_whole,
            materialise: Callable[[DataFrame], DataFrame] = cache_columns, **gate_options) -> None:
    """published() for a step that needs nothing of its frames once written: gate, write, release."""
    with published(lake, conf, frames, run_id, step, write, materialise, **gate_options):
        pass
