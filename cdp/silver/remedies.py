"""What to change when silver quarantines rows for a reason: the file and the key that decide it. Pure (no Spark):
the words a failed silver step and `cdp quarantine` give a user whose configuration, not data, is at fault."""

from __future__ import annotations

from cdp.config import Settings
from cdp.config.sources import SourceSpec


def remedy(reason: str, spec: SourceSpec, settings: Settings) -> str:
    """'<file>: key '<key>' (what it says now)' for a quarantine reason of silver (`bad_timestamp:sold_at`,
    `implausible_time:sold_at`, `dq:interactions:amount_not_negative`, ...)."""
    kind, _, rest = reason.partition(":")
    where = spec.path_of_definition
    column = rest
    i = spec.column_index(column)
    at = f"columns.{i}" if i is not None else "columns"
    if kind == "implausible_time":
        start = spec.history_starts or settings.silver.history_starts
        return (f"{where}: key 'history_starts' (the earliest plausible event time, now {start}; "
                f"times after {settings.silver.future_tolerance_hours} h ahead of the run are implausible too)")
    if kind == "bad_timestamp":
        return (f"{where}: key 'timestamp_format' (now {spec.timestamp_format!r}) or 'timezone' (now {spec.timezone}), "
                f"or {at}.on_bad_value")
    if kind == "bad_type":
        kind_now = spec.column_type(column) if i is not None else "?"
        return f"{where}: key '{at}.type' (now {kind_now}) or '{at}.on_bad_value'"
    if kind in ("bad_text", "bad_email", "bad_phone"):
        return f"{where}: key '{at}.on_bad_value' (null_and_flag lets the row go on without the value)"
    if kind == "dq":
        table, _, expectation = rest.partition(":")
        contract = f"{settings.conf_dir}/tables/silver/{table}.yaml"
        return f"{contract}: expectation '{expectation}' (its bounds or level), or what {where} maps onto it"
    return f"{where}"
