"""The table registry: every lakehouse table is named here once, the way dbt's `ref()` names a model.

Code refers to tables through these objects, never through a 'layer.table' string or another layer's
constants. Each table's description, columns and expectations live in its contract,
conf/tables/<layer>/<table>.yaml (bronze tables are described by their source file, conf/sources/<source>.yaml);
`tests/test_tables.py` keeps the two in step. A `schema` is given for the tables the code writes from Python
rows, and for those that must exist, empty, from the first run on (a BI query never fails on a missing table).
"""

from __future__ import annotations

from dataclasses import dataclass

LAYERS = ("bronze", "silver", "gold", "quarantine", "audit")
# Lineage every bronze row carries, and every silver row keeps: the landing file, when and by which run it was
# landed, and a hash of the row's values (change detection, idempotent re-runs).
LINEAGE = ["_source_file", "_ingested_at", "_run_id", "_record_hash"]


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    key: tuple[str, ...] = ()
    schema: str | None = None  # Spark DDL, for tables created from Python rows or bootstrapped empty

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"unknown layer {self.layer!r}; layers are {', '.join(LAYERS)}")

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    def __str__(self) -> str:
        return self.qualified


# ---------------------------------------------------------------- quarantine and audit
QUARANTINE = Table("quarantine", "records", ("stage", "source", "source_file", "record_key", "reason"),
                   "run_id string, stage string, source string, source_file string, record_key string, "
                   "reason string, raw string, quarantined_at timestamp")
INGEST_LOG = Table("audit", "ingest_log", ("source", "file_path"),
                   "source string, file_path string, file_size long, file_modified_ms long, run_id string, "
                   "ingested_at timestamp, rows_landed long, rows_bronze long, rows_quarantined long")
FILE_REJECTIONS = Table("audit", "file_rejections", ("run_id", "source", "file_path"),
                        "run_id string, source string, file_path string, file_size long, file_modified_ms long, "
                        "reason string, rejected_at timestamp")
RECONCILIATION = Table("audit", "reconciliation", ("run_id", "source", "stage", "target_table"),
                       "run_id string, source string, stage string, target_table string, rows_in long, "
                       "rows_out long, rows_quarantined long, rows_duplicate long, balanced boolean, "
                       "rows_flagged long, recorded_at timestamp")
QUALITY_RESULTS = Table("audit", "quality_results", ("run_id", "table_name", "expectation"),
                        "run_id string, table_name string, expectation string, type string, column string, "
                        "level string, success boolean, element_count long, unexpected_count long, "
                        "unexpected_percent double, validated_at timestamp")
SILVER_BATCHES = Table("audit", "silver_batches", ("source", "bronze_run_id"),
                       "source string, bronze_run_id string, run_id string, processed_at timestamp")
QUARANTINE_REPLAYS = Table("audit", "quarantine_replays", ("run_id", "source", "reason", "outcome", "reason_now"),
                           "run_id string, source string, reason string, outcome string, reason_now string, "
                           "rows long, replayed_at timestamp")
UNATTRIBUTED = Table("audit", "unattributed_interactions", ("run_id", "source", "reason"),
                     "run_id string, source string, reason string, interactions long, recorded_at timestamp")
IDENTITY_RUNS = Table("audit", "identity_runs", ("run_id",),
                      "run_id string, mode string, reason string, records_version long, config_fingerprint string, "
                      "model_id string, records long, dirty_records long, region_records long, seconds double, "
                      "resolved_at timestamp")
PIPELINE_RUNS = Table("audit", "pipeline_runs", ("run_id", "level", "step", "status"),
                      "run_id string, level string, step string, status string, started_at timestamp, "
                      "ended_at timestamp, seconds double, rows_in long, rows_out long, outputs string, "
                      "error string, plan string, as_of date, env string, recorded_at timestamp")
ERASURE_LOG = Table("audit", "erasure_log", ("run_id", "request_hash"),
                    "run_id string, requested_at timestamp, kind string, request_hash string, status string, "
                    "dry_run boolean, customers long, records long, rows_deleted map<string,bigint>, "
                    "tables_touched long, files_vacuumed long, log_files_removed long, landing_files_holding long, "
                    "landing_files_rewritten long, artifact_rows_removed long, seconds double")

# ---------------------------------------------------------------- silver: the canonical model
INTERACTIONS = Table("silver", "interactions", ("interaction_id",))
IDENTITY_RECORDS = Table("silver", "identity_records", ("record_id",))
ORDERS = Table("silver", "orders", ("order_id",))
ORDER_LINES = Table("silver", "order_lines", ("order_line_id",))

# ---------------------------------------------------------------- gold: identity
IDENTITY_MAP = Table("gold", "identity_map", ("record_id",))
IDENTITY_LINKS = Table("gold", "identity_links", ("src", "dst", "rule"))
IDENTITY_CHANGES = Table("gold", "identity_changes", ("run_id", "change_type", "customer_ids_before", "customer_id_after"))
IDENTITY_JUNK_VALUES = Table("gold", "identity_junk_values", ("attribute", "value"))
IDENTITY_CAPPED_VALUES = Table("gold", "identity_capped_values", ("component", "attribute", "value"))
IDENTITY_REVIEW = Table("gold", "identity_review", ("cluster_root", "reason"))
IDENTITY_CLUSTER_SIZES = Table("gold", "identity_cluster_sizes", ("size",))
IDENTITY_MATCH_SCORES = Table("gold", "identity_match_scores", ("src", "dst"))
IDENTITY_MODEL = Table("gold", "identity_model", ("model_id",),
                       "model_id string, trained_run_id string, trained_at timestamp, model_fingerprint string, "
                       "trained boolean, candidates long, model_json string")
IDENTITY_TERM_FREQUENCIES = Table("gold", "identity_term_frequencies", ("model_id", "attribute", "value"),
                                  "model_id string, attribute string, value string, tf double")
CUSTOMERS = Table("gold", "customers", ("customer_id",))

# ---------------------------------------------------------------- gold: journeys
CUSTOMER_JOURNEY = Table("gold", "customer_journey", ("interaction_id",))
INCOMPLETE_PURCHASES = Table("gold", "incomplete_purchases", ("customer_id", "period", "kind"))
FUNNELS = Table("gold", "funnels", ("period", "channel", "step"))
JOURNEY_PATHS = Table("gold", "journey_paths", ("outcome", "path"))
ATTRIBUTION = Table("gold", "attribution", ("purchase_id", "model", "interaction_id"))

# ---------------------------------------------------------------- gold: Customer 360, segments, KPI marts
CUSTOMER_PROFILE = Table("gold", "customer_profile", ("customer_id",))
CUSTOMER_PROFILE_HISTORY = Table("gold", "customer_profile_history", ("customer_id", "valid_from"))
SEGMENTS = Table("gold", "segments", ("run_id", "segment", "customer_id"))
SEGMENT_SIZES = Table("gold", "segment_sizes", ("run_id", "segment"))
KPI_DAILY_CHANNEL = Table("gold", "kpi_daily_channel", ("date", "channel"))
KPI_COHORT_RETENTION = Table("gold", "kpi_cohort_retention", ("cohort_month", "months_since_first"))
KPI_SATISFACTION = Table("gold", "kpi_satisfaction", ("month",))
KPI_COMPLAINTS = Table("gold", "kpi_complaints", ("month", "reason"))

# ---------------------------------------------------------------- gold: churn, value and retention actions
CHURN_FEATURES = Table("gold", "churn_features", ("customer_id", "snapshot_date"))
CHURN_SCORES = Table("gold", "churn_scores", ("customer_id",))
CUSTOMER_VALUE = Table("gold", "customer_value", ("customer_id",))
NEXT_BEST_ACTION = Table("gold", "next_best_action", ("customer_id",))

# ---------------------------------------------------------------- gold: BI-facing copies, PII hashed or masked (conf/pii.yaml)
CUSTOMERS_PROTECTED = Table("gold", "customers_protected", ("customer_id",))
CUSTOMER_PROFILE_PROTECTED = Table("gold", "customer_profile_protected", ("customer_id",))
CUSTOMER_PROFILE_HISTORY_PROTECTED = Table("gold", "customer_profile_history_protected", ("customer_id", "valid_from"))

SILVER_TABLES = (INTERACTIONS, IDENTITY_RECORDS, ORDERS, ORDER_LINES)
IDENTITY_TABLES = (IDENTITY_MAP, IDENTITY_LINKS, IDENTITY_CHANGES, IDENTITY_JUNK_VALUES, IDENTITY_CAPPED_VALUES,
                   IDENTITY_REVIEW, IDENTITY_CLUSTER_SIZES, IDENTITY_MATCH_SCORES, CUSTOMERS)
JOURNEY_TABLES = (CUSTOMER_JOURNEY, INCOMPLETE_PURCHASES, FUNNELS, JOURNEY_PATHS, ATTRIBUTION)
PROFILE_TABLES = (CUSTOMER_PROFILE, CUSTOMER_PROFILE_HISTORY, SEGMENTS, SEGMENT_SIZES)
KPI_TABLES = (KPI_DAILY_CHANNEL, KPI_COHORT_RETENTION, KPI_SATISFACTION, KPI_COMPLAINTS)
PREDICTION_TABLES = (CHURN_FEATURES, CHURN_SCORES, CUSTOMER_VALUE, NEXT_BEST_ACTION)
PROTECTED_TABLES = (CUSTOMERS_PROTECTED, CUSTOMER_PROFILE_PROTECTED, CUSTOMER_PROFILE_HISTORY_PROTECTED)
IDENTITY_STATE = (IDENTITY_MODEL, IDENTITY_TERM_FREQUENCIES)
OPERATIONAL = (QUARANTINE, INGEST_LOG, FILE_REJECTIONS, RECONCILIATION, QUALITY_RESULTS, SILVER_BATCHES, UNATTRIBUTED,
               IDENTITY_RUNS, PIPELINE_RUNS, ERASURE_LOG, QUARANTINE_REPLAYS)
REGISTERED = (*OPERATIONAL, *SILVER_TABLES, *IDENTITY_TABLES, *IDENTITY_STATE, *JOURNEY_TABLES, *PROFILE_TABLES, *KPI_TABLES,
              *PREDICTION_TABLES, *PROTECTED_TABLES)
_BY_NAME = {t.qualified: t for t in REGISTERED}


def bronze(source: str) -> Table:
    """bronze.<source>: one table per source definition, every value as the export delivered it."""
    return Table("bronze", source, ("_source_file", "_record_hash"))


def table(qualified: str) -> Table:
    """The registered table called 'layer.name' (bronze.<source> for any source); ValueError otherwise."""
    if qualified in _BY_NAME:
        return _BY_NAME[qualified]
    layer, _, name = qualified.partition(".")
    if layer == "bronze" and name:
        return bronze(name)
    raise ValueError(f"unknown table {qualified!r}; tables are: {', '.join(sorted(_BY_NAME))} and bronze.<source>")
