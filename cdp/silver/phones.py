"""Phone numbers -> E.164 with libphonenumber, as a vectorized pandas UDF that caches each distinct value per batch."""

from __future__ import annotations

from functools import cache

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_E164 = phonenumbers.PhoneNumberFormat.E164
_RUNS = "01234567890", "98765432109"  # ascending / descending digit runs, e.g. 123456789


def _is_junk(nsn: str) -> bool:
    """True for national numbers that are one repeated digit or a plain digit run."""
    return len(set(nsn)) == 1 or any(nsn in run for run in _RUNS)


def to_e164(value: object, region: object, fallback: str = "ES", strict: bool = True) -> str | None:
    """One raw phone -> E.164 string, or None when it does not parse / is not a valid (or, lenient, possible) number."""
    if not isinstance(value, str) or not value.strip():
        return None
    region = region.strip().upper() if isinstance(region, str) else ""
    if region not in SUPPORTED_REGIONS:
        region = fallback
    try:
        number = phonenumbers.parse(value, region)
        if not phonenumbers.is_possible_number(number):
            return None
        if strict and not phonenumbers.is_valid_number(number):
            return None
        if not strict and _is_junk(phonenumbers.national_significant_number(number)):
            return None
        return phonenumbers.format_number(number, _E164)
    except Exception:  # noqa: BLE001 - a UDF must never fail the task on a bad value
        return None


@cache
def _phone_udf(fallback: str, strict: bool):
    @pandas_udf("string")
    def e164(values: pd.Series, regions: pd.Series) -> pd.Series:
        cache: dict[tuple, str | None] = {}
        out = []
        for key in zip(values.tolist(), regions.tolist(), strict=True):
            if key not in cache:
                cache[key] = to_e164(key[0], key[1], fallback, strict)
            out.append(cache[key])
        return pd.Series(out, index=values.index, dtype=object)

    return e164


def _region_literal(region: str) -> str:
    code = region.strip().upper()
    if code not in SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}: expected an ISO-3166 alpha-2 code")
    return code


def normalize_phone(col: Column | str, default_region: str | Column = "ES", fallback_region: str = "ES",
                    strict: bool = True) -> Column:
    """Phone -> E.164 string or NULL; region per row (Column) or literal; strict requires is_valid_number."""
    fallback = _region_literal(fallback_region)
    if isinstance(default_region, str):
        region = F.lit(_region_literal(default_region))
    else:
        region = F.coalesce(default_region.cast("string"), F.lit(fallback))
    value = (F.col(col) if isinstance(col, str) else col).cast("string")
    return _phone_udf(fallback, bool(strict))(value, region)
