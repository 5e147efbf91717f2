"""Data quality: table contracts (conf/tables, loaded by cdp.config.contracts), Great Expectations validation,
quarantine reasons, docs.

    contract = load_contract(settings, INTERACTIONS)
    df = df.withColumn("_dq_reason", row_failure_reason(contract))   # NULL = row passes
    report = validate(df, contract, run_id)                           # GX verdict and counts
    record_quality(lake, report)                                      # -> audit.quality_results
    report.raise_for_critical(render_quality_docs([report], reports_dir, spark))   # s3a://, abfss:// via Hadoop
"""

from cdp.config.contracts import (
    ColumnContract,
    ExpectationSpec,
    TableContract,
    contract_path,
    load_contract,
    load_contracts,
)
from cdp.quality.contracts import failure_condition, row_failure_reason
from cdp.quality.docs import render_quality_docs
from cdp.quality.gx_runner import (
    ExpectationResult,
    QualityReport,
    quality_history_rows,
    record_quality,
    validate,
)

__all__ = [
    "ColumnContract",
    "ExpectationResult",
    "ExpectationSpec",
    "QualityReport",
    "TableContract",
    "contract_path",
    "failure_condition",
    "load_contract",
    "load_contracts",
    "quality_history_rows",
    "record_quality",
    "render_quality_docs",
    "row_failure_reason",
    "validate",
]
