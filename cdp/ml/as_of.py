"""What a day means to the prediction steps: `as_of` D and a snapshot date D are the END of day D in the
configured time zone (conf/churn.yaml scoring.timezone), so the events of D count and whatever is predicted
starts after D. A user who says "as of 30 September" has seen the 30th; midnight at its start would drop it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pyspark.sql import Column
from pyspark.sql import functions as F

MICROS_PER_DAY = 86_400_000_000


def end_of_day(day: date, timezone: str) -> datetime:
    """The instant `day` ends in `timezone` (midnight starting the next day there), timezone-aware: an event is
    on or before `day` exactly when it is earlier than this."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(timezone))


def local_day_number(ts: Column | str, timezone: str) -> Column:
    """Days since 1970-01-01 of the calendar day `ts` falls on in `timezone`. from_utc_timestamp shifts the
    instant by the zone's offset at that instant; unlike to_date it does not depend on the session time zone."""
    column = F.col(ts) if isinstance(ts, str) else ts
    return F.floor(F.unix_micros(F.from_utc_timestamp(column, timezone)) / MICROS_PER_DAY)


def local_date(ts: Column | str, timezone: str) -> Column:
    """The calendar day (a date) `ts` falls on in `timezone`."""
    return F.date_from_unix_date(local_day_number(ts, timezone).cast("int"))


def day_of(instant: datetime, timezone: str) -> date:
    """The calendar day of `instant` in `timezone` (a naive instant is UTC, as Spark's timestamps are here)."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=ZoneInfo("UTC"))
    return aware.astimezone(ZoneInfo(timezone)).date()
