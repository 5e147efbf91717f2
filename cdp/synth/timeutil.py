"""Fast, dependency-free timestamp formatting on integer epoch seconds (UTC).

Daylight-saving rules are computed by hand (EU and US rules) so output does
not depend on the host's tz database.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

_EPOCH_ORD = date(1970, 1, 1).toordinal()
_DAY_CACHE: dict[int, tuple[str, int, int, int]] = {}
_DST_CACHE: dict[tuple[str, int], tuple[int, int]] = {}


def epoch(d: date) -> int:
    return (d.toordinal() - _EPOCH_ORD) * 86400


def _day(dn: int) -> tuple[str, int, int, int]:
    v = _DAY_CACHE.get(dn)
    if v is None:
        d = date.fromordinal(dn + _EPOCH_ORD)
        v = (d.isoformat(), d.year, d.month, d.day)
        _DAY_CACHE[dn] = v
    return v


_HMS_CACHE: dict[int, str] = {}


def _hms(sod: int) -> str:
    v = _HMS_CACHE.get(sod)
    if v is None:
        h, r = divmod(sod, 3600)
        m, s = divmod(r, 60)
        v = _HMS_CACHE[sod] = f"{h:02d}:{m:02d}:{s:02d}"
    return v


def date_str(ts: int) -> str:
    return _day(ts // 86400)[0]


def iso_z(ts: int) -> str:
    return f"{_day(ts // 86400)[0]}T{_hms(ts % 86400)}Z"


def iso_naive(ts: int) -> str:
    return f"{_day(ts // 86400)[0]}T{_hms(ts % 86400)}"


def sql_ts(ts: int) -> str:
    return f"{_day(ts // 86400)[0]} {_hms(ts % 86400)}"


def _last_sunday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def _nth_sunday(year: int, month: int, n: int) -> date:
    d = date(year, month, 1)
    d += timedelta(days=(6 - d.weekday()) % 7)
    return d + timedelta(days=7 * (n - 1))


def _dst_bounds(rule: str, year: int) -> tuple[int, int]:
    key = (rule, year)
    v = _DST_CACHE.get(key)
    if v is None:
        if rule == "EU":  # 01:00 UTC on last Sunday of March / October
            v = (epoch(_last_sunday(year, 3)) + 3600, epoch(_last_sunday(year, 10)) + 3600)
        else:  # US Eastern: 2am local = 07:00 UTC (EST) / 06:00 UTC (EDT)
            v = (epoch(_nth_sunday(year, 3, 2)) + 7 * 3600, epoch(_nth_sunday(year, 11, 1)) + 6 * 3600)
        _DST_CACHE[key] = v
    return v


# country -> (standard offset hours, dst rule)
_TZ = {"ES": (1, "EU"), "GB": (0, "EU"), "IE": (0, "EU"), "US": (-5, "US")}


def utc_offset(ts: int, country: str) -> int:
    std, rule = _TZ[country]
    year = _day(ts // 86400)[1]
    a, b = _dst_bounds(rule, year)
    return (std + 1 if a <= ts < b else std) * 3600


def iso_offset(ts: int, country: str) -> str:
    off = utc_offset(ts, country)
    loc = ts + off
    sign = "+" if off >= 0 else "-"
    h = abs(off) // 3600
    return f"{_day(loc // 86400)[0]}T{_hms(loc % 86400)}{sign}{h:02d}:00"


def madrid_ddmm(ts: int) -> str:
    loc = ts + utc_offset(ts, "ES")
    _, y, mo, d = _day(loc // 86400)
    sod = loc % 86400
    return f"{d:02d}/{mo:02d}/{y:04d} {sod // 3600:02d}:{sod % 3600 // 60:02d}"


def to_datetime(ts: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=ts)


def month_dow(ts: int) -> tuple[int, int]:
    dn = ts // 86400
    return _day(dn)[2], (dn + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
