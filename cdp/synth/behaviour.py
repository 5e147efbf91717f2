"""Behaviour model: seasonality, weekly cycle, churn taper, satisfaction."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from datetime import date

from cdp.synth import vocab
from cdp.synth.timeutil import epoch, month_dow

# month 1..12 -> relative activity (Nov-Dec peak, summer dip)
SEASON = (0, 0.95, 0.85, 0.95, 1.0, 1.0, 0.9, 0.75, 0.7, 0.95, 1.0, 1.45, 1.6)
WEEKDAY = (0.95, 0.95, 1.0, 1.0, 1.05, 1.15, 0.9)  # Mon..Sun
STORE_WEEKDAY = (0.8, 0.8, 0.85, 0.9, 1.15, 1.6, 0.35)
# local hour-of-day weights (0..23)
HOUR_W = (1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 2, 3, 4, 4.5, 5, 5, 5.5, 5, 4.5, 4.5, 5, 5.5, 6.5, 7, 6.5, 4.5, 2.5)
STORE_HOUR_W = tuple(0 if h < 10 or h > 20 else w for h, w in enumerate(HOUR_W))
CALL_HOUR_W = tuple(0 if h < 9 or h > 20 else 1.0 for h in range(24))
_UTC_SHIFT = {"ES": -1, "GB": 0, "IE": 0, "US": 5}
TAPER_DAYS = 90


def _cum(ws):
    out, s = [], 0.0
    for w in ws:
        s += w
        out.append(s)
    return out


@dataclass
class Campaign:
    campaign_id: str
    name: str
    lang: str
    day: int
    link: str


@dataclass
class Ctx:
    seed: int
    start: date
    end: date
    customers: int
    t0: int = 0
    days: int = 0
    day_w: list = field(default_factory=list)
    store_w: list = field(default_factory=list)
    w_max: float = 1.0
    accept: float = 1.0
    campaigns: dict = field(default_factory=dict)  # lang -> list[Campaign]

    def __post_init__(self):
        self.t0 = epoch(self.start)
        self.days = (self.end - self.start).days + 1
        for d in range(self.days):
            m, dow = month_dow(self.t0 + d * 86400)
            self.day_w.append(SEASON[m] * WEEKDAY[dow])
            self.store_w.append(SEASON[m] * STORE_WEEKDAY[dow])
        self.w_max = max(max(self.day_w), max(self.store_w))
        self.accept = sum(self.day_w) / len(self.day_w) / self.w_max
        self.campaigns = _campaigns(self)

    @property
    def t_end(self) -> int:
        return self.t0 + self.days * 86400 - 1


_HOUR_CUM = _cum(HOUR_W)
_STORE_HOUR_CUM = _cum(STORE_HOUR_W)
_CALL_HOUR_CUM = _cum(CALL_HOUR_W)
_HOURS = tuple(range(24))


def _campaigns(ctx: Ctx) -> dict:
    """Global campaign calendar (independent of chunks): ~1 per week per language."""
    rng = random.Random(f"{ctx.seed}:campaigns")
    out = {"es": [], "en": []}
    for lang, themes in (("es", vocab.CAMPAIGN_THEMES_ES), ("en", vocab.CAMPAIGN_THEMES_EN)):
        d, n = 2, 0
        while d < ctx.days:
            m, _ = month_dow(ctx.t0 + d * 86400)
            theme = themes[{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 4, 9: 5, 10: 8, 11: 6, 12: 7}[m]]
            if rng.random() < 0.35:
                theme = themes[rng.choice((8, 9, 10))]
            n += 1
            cid = f"CMP-{lang.upper()}-{n:04d}"
            out[lang].append(Campaign(cid, theme, lang, d, rng.choice(vocab.LINK_PATHS)))
            d += rng.randint(4, 10)
    return out


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def taper(p, d: int) -> float:
    """Activity multiplier for person p on window day d (1 normally, ->0.15 before churn, 0 after)."""
    if not p.churned:
        return 1.0
    cd = p.churn_day
    if d >= cd:
        return 0.0
    if d >= cd - TAPER_DAYS:
        return 1.0 - 0.85 * (d - (cd - TAPER_DAYS)) / TAPER_DAYS
    return 1.0


def closeness(p, d: int) -> float:
    """0 far from churn, rising to 1 at the churn date (and after)."""
    if not p.churned:
        return 0.0
    x = (d - (p.churn_day - TAPER_DAYS)) / TAPER_DAYS
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def satisfaction(rng: random.Random, p, d: int) -> float:
    s = p.sat_base - 0.6 * closeness(p, d) + rng.gauss(0, 0.08)
    return 0.0 if s < 0 else 1.0 if s > 1 else s


def sentiment(s: float) -> str:
    return "pos" if s >= 0.62 else "neg" if s < 0.42 else "neu"


def csat_score(rng: random.Random, s: float) -> int:
    return min(5, max(1, int(round(1 + 4 * s + rng.gauss(0, 0.45)))))


def nps_score(rng: random.Random, s: float) -> int:
    return min(10, max(0, int(round(10 * s + rng.gauss(0, 1.0)))))


def _time_of_day(rng: random.Random, country: str, cum) -> int:
    h = bisect.bisect_right(cum, rng.random() * cum[-1])
    h = min(h, 23)
    return ((h + _UTC_SHIFT[country]) % 24) * 3600 + rng.randrange(3600)


def sample_times(rng: random.Random, ctx: Ctx, p, expected: float, *, store: bool = False,
                 call: bool = False, lo_day: int | None = None, hi_day: int | None = None,
                 use_taper: bool = True) -> list[int]:
    """Event instants for person p with intensity seasonality x weekly cycle x churn taper.

    `expected` is the mean number of events over the whole window for an always-active person.
    """
    lo = p.start_day if lo_day is None else max(lo_day, 0)
    hi = ctx.days - 1 if hi_day is None else min(hi_day, ctx.days - 1)
    if hi < lo:
        return []
    tries = poisson(rng, expected * (hi - lo + 1) / ctx.days / ctx.accept)
    if tries == 0:
        return []
    weights = ctx.store_w if store else ctx.day_w
    cum = _STORE_HOUR_CUM if store else _CALL_HOUR_CUM if call else _HOUR_CUM
    wmax = ctx.w_max
    out = []
    for _ in range(min(tries, 400)):
        d = rng.randint(lo, hi)
        w = weights[d]
        if use_taper and p.churned:
            w *= taper(p, d)
        if rng.random() * wmax < w:
            out.append(ctx.t0 + d * 86400 + _time_of_day(rng, p.country, cum))
    out.sort()
    return out


def day_of(ctx: Ctx, ts: int) -> int:
    return (ts - ctx.t0) // 86400
