"""Bronze strings -> declared types, and what a present value that does not parse does to its row.

A value "does not parse" when it is present (non-blank) and its declared type cannot read it; for a string column,
when it is not clean text (`bad_text`: bytes that were not UTF-8, which the readers turn into U+FFFD, a NUL or
another control character but tab and newline), for a column identity resolution standardises (the identity
mapping's email and phone), when standardising it gives NULL, and, for a column silver reads as an event's time,
when it falls outside the source's plausible window (`history_starts`, default silver.history_starts, up to
silver.future_tolerance_hours after the run started).
The column's `on_bad_value` (conf/sources/<source>.yaml) decides: quarantine_row sends the whole row to
quarantine (`_type_defect`: `bad_type:<col>`, `bad_timestamp:<col>`, `bad_email:<col>`, `bad_phone:<col>`,
`implausible_time:<col>`);
null_and_flag lets the row go on with the value NULL and records it in the row's `_defects` map
(column -> the value as delivered), which silver keeps as `defects` and the quarantine as `bad_value:<col>`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import SilverSettings
from cdp.config.sources import ColumnSpec, SourceSpec
from cdp.frames import first_failing
from cdp.silver.canonical import DEFECTS, standardised_identifiers
from cdp.silver.standardize import parse_bool, to_amount, to_date_safe, to_utc_timestamp

TYPE_DEFECT = "_type_defect"


def typed_value(spec: SourceSpec, name: str) -> Column:
    kind, raw = spec.column_type(name), F.col(name)
    if kind == "string":
        return raw
    if kind in ("int", "long"):
        return F.trim(raw).try_cast(kind)
    if kind == "double":
        return to_amount(raw)
    if kind == "boolean":
        return parse_bool(raw)
    if kind == "date":
        return to_date_safe(raw)
    ts = to_utc_timestamp(raw, spec.timestamp_format, spec.timezone)
    return ts if spec.timestamp_format == "iso" else F.coalesce(ts, to_utc_timestamp(raw, "iso", spec.timezone))


def no_defects() -> Column:
    return F.create_map().cast("map<string,string>")


def _present(name: str) -> Column:
    return F.col(name).isNotNull() & (F.trim(F.col(name)) != "")


# U+FFFD is what the CSV and JSON readers make of bytes that are not UTF-8; C0 controls but tab, LF and CR
UNCLEAN_TEXT = "[\\x{0}-\\x{8}\\x{B}\\x{C}\\x{E}-\\x{1F}\\x{7F}\\x{FFFD}]"


def unclean_text(col: Column) -> Column:
    """The string is not clean text: invalid UTF-8 (raw, from Parquet), U+FFFD, or a control character."""
    return ~F.is_valid_utf8(col) | col.rlike(UNCLEAN_TEXT)


Window = tuple[datetime, datetime]


def plausible_window(spec: SourceSpec, settings: SilverSettings, now: datetime | None) -> Window | None:
    """[start of history_starts, now + future_tolerance_hours] in UTC: when the source's events can have happened
    (None: no run time given, no window)."""
    if now is None:
        return None
    start = datetime.combine(spec.history_starts or settings.history_starts, time.min, tzinfo=timezone.utc)
    now = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
    return start, now + timedelta(hours=settings.future_tolerance_hours)


def outside(window: Window, value: Column) -> Column:
    """The (typed, non-null) time is outside the window."""
    moment = value.cast("timestamp")
    return (moment < F.lit(window[0])) | (moment > F.lit(window[1]))


def unparsed_checks(spec: SourceSpec, settings: SilverSettings,
                    window: Window | None = None) -> list[tuple[ColumnSpec, Column, str]]:
    """(column, "its value is present and does not parse", label) for every column silver parses, in the
    order of the file: typed columns by their type (and an event time by the window too), the identity
    mapping's email and phone columns by whether they standardise."""
    identifiers: dict[str, list[tuple[str, Column]]] = {}
    for field, name, standardised in standardised_identifiers(spec, settings):
        identifiers.setdefault(name, []).append((field, standardised))
    times = set(spec.event_time_columns) if window is not None else set()
    checks = []
    for c in spec.columns:
        if c.type != "string":
            label = "bad_timestamp" if c.type in ("date", "timestamp") else "bad_type"
            typed = typed_value(spec, c.name)
            checks.append((c, _present(c.name) & typed.isNull(), label))
            if c.name in times:
                checks.append((c, _present(c.name) & typed.isNotNull() & outside(window, typed), "implausible_time"))
        else:
            checks.append((c, _present(c.name) & unclean_text(F.col(c.name)), "bad_text"))
            for field, standardised in identifiers.get(c.name, []):
                checks.append((c, _present(c.name) & standardised.isNull(), f"bad_{field}"))
    return checks


Checks = list[tuple[ColumnSpec, Column, str]]


def _checks_doing(action: str, spec: SourceSpec, settings: SilverSettings, window: Window | None,
                  checks: Checks | None) -> Checks:
    checks = unparsed_checks(spec, settings, window) if checks is None else checks
    return [chk for chk in checks if chk[0].bad_value_action(spec.record_key) == action]


def type_defect(spec: SourceSpec, settings: SilverSettings, window: Window | None = None,
                checks: Checks | None = None) -> Column:
    """Why the row goes to quarantine: the first quarantine_row column whose value does not parse, or null.
    checks: unparsed_checks(spec, settings, window) built already (a source's columns are built once)."""
    return first_failing([(failing, f"{label}:{c.name}")
                          for c, failing, label in _checks_doing("quarantine_row", spec, settings, window, checks)])


def value_defects(spec: SourceSpec, settings: SilverSettings, window: Window | None = None,
                  checks: Checks | None = None) -> Column:
    """The row's null_and_flag values that do not parse, as a map column -> the value as delivered (empty: none)."""
    failing: dict[str, Column] = {}
    for c, bad, _ in _checks_doing("null_and_flag", spec, settings, window, checks):
        failing[c.name] = failing[c.name] | bad if c.name in failing else bad
    if not failing:
        return no_defects()
    entries = [x for name, bad in failing.items() for x in (F.lit(name), F.when(bad, F.col(name).cast("string")))]
    return F.map_filter(F.create_map(*entries), lambda k, v: v.isNotNull())


def with_defects(spec: SourceSpec, settings: SilverSettings, window: Window | None = None,
                 checks: Checks | None = None):
    """Add `_type_defect` (the row goes to quarantine) and `_defects` (values that go on as NULL), read from the
    values as delivered."""
    def step(df: DataFrame) -> DataFrame:
        built = unparsed_checks(spec, settings, window) if checks is None else checks
        return df.withColumns({TYPE_DEFECT: type_defect(spec, settings, window, built),
                               DEFECTS: value_defects(spec, settings, window, built)})
    return step


def with_typed_columns(spec: SourceSpec, window: Window | None = None):
    """Replace every declared column by its typed value (blank strings, values that do not parse and event times
    outside the window become null)."""
    times = set(spec.event_time_columns) if window is not None else set()

    def typed(c: ColumnSpec) -> Column:
        if c.type == "string":
            return F.when(F.trim(F.col(c.name)) != "", F.col(c.name))
        value = typed_value(spec, c.name)
        return F.when(~outside(window, value), value) if c.name in times else value

    def step(df: DataFrame) -> DataFrame:
        keep = [c for c in df.columns if c not in spec.column_names]
        return df.select(*[typed(c).alias(c.name) for c in spec.columns], *keep)
    return step


def with_types(spec: SourceSpec, settings: SilverSettings, now: datetime | None = None,
               checks: Checks | None = None):
    """Bronze rows -> typed rows carrying `_type_defect` and `_defects`; `now` (the run's start) bounds the
    plausible event times. checks: unparsed_checks for that window, built already."""
    window = plausible_window(spec, settings, now)

    def step(df: DataFrame) -> DataFrame:
        return df.transform(with_defects(spec, settings, window, checks)).transform(with_typed_columns(spec, window))
    return step
