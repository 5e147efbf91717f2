"""Latent persons and households: the ground truth behind every source record."""

from __future__ import annotations

import random

from cdp.synth import vocab
from cdp.synth.timeutil import date_str

# Bijections on [0, 10**k): affine maps interleaved with digit reversal. They give
# unique, non-sequential identifiers from a global index without any shared state.
_A = (6364136223847, 2862933555777941, 1442695040888963407)
assert all(a % 2 and a % 5 for a in _A)


def _perm(x: int, k: int, salt: int) -> int:
    m = 10**k
    for r, a in enumerate(_A):
        x = (x * (a % m) + 7919 * (salt + r + 1)) % m
        if r < 2:
            x = int(f"{x:0{k}d}"[::-1])
    return x


_M13 = 10**13
_A13a, _A13b = _A[0] % _M13, _A[1] % _M13


def perm13(x: int) -> int:
    """Cheaper 13-digit bijection used for record keys (hot path)."""
    x = (x * _A13a + 7919) % _M13
    return (int(f"{x:013d}"[::-1]) * _A13b + 104729) % _M13


def perm8(x: int, salt: int = 0) -> int:
    return _perm(x, 8, salt)


def perm7(x: int, salt: int = 0) -> int:
    return _perm(x, 7, salt)


KEYS_PER_PERSON = 4096


class Person:
    __slots__ = (
        "idx", "pid", "hh", "country", "lang", "gender", "first", "last", "married_last", "marriage_ts",
        "birth", "email", "emails", "family_email", "mobile", "landline", "addresses", "signup_ts",
        "start_day", "churned", "churn_day", "churn_ts", "value", "churn_prop", "sat_base", "devices",
        "crm", "crm_dup", "loyalty_id", "consent", "handles", "declared", "nk", "gmail",
    )

    def next_key(self) -> int:
        k = self.nk
        if k >= KEYS_PER_PERSON:
            raise RuntimeError("too many records for one person")
        self.nk = k + 1
        return perm13(self.idx * KEYS_PER_PERSON + k)

    def last_at(self, ts: int) -> str:
        if self.married_last and ts >= self.marriage_ts:
            return self.married_last
        return self.last

    def address_at(self, ts: int) -> tuple[str, str, str, str]:
        addr = self.addresses[0]
        for a in self.addresses:
            if a[0] <= ts:
                addr = a
        return addr[1:]

    def email_at(self, rng: random.Random) -> str:
        """An email this person would type somewhere (mostly the primary one)."""
        r = rng.random()
        if r < 0.72 or len(self.emails) == 1:
            e = self.emails[0]
        else:
            e = self.emails[1 + int(r * 1000) % (len(self.emails) - 1)]
        if self.family_email and rng.random() < 0.25:
            e = self.family_email
        return e

    def phone_at(self, rng: random.Random) -> str:
        if self.landline and rng.random() < 0.35:
            return self.landline
        return self.mobile


def _ascii_local(s: str) -> str:
    return vocab.strip_accents(s).lower().replace(" ", "").replace("'", "")


def _make_address(rng: random.Random, country: str, ts: int) -> tuple:
    city, region, pre = rng.choice(vocab.CITIES[country])
    num = rng.randint(1, 180)
    if country == "ES":
        street = f"{rng.choice(vocab.ES_STREETS)}, {num}"
        if rng.random() < 0.7:
            street += f", {rng.randint(1, 9)}º {rng.choice('ABCDI')}"
        postal = pre + f"{rng.randrange(1000):03d}"
    else:
        street = f"{num} {rng.choice(vocab.EN_STREETS)}"
        if rng.random() < 0.2:
            street = f"Flat {rng.randint(1, 30)}, " + street
        if country == "GB":
            postal = f"{pre}{rng.randint(1, 20)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
                     f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        elif country == "US":
            postal = f"{pre}{rng.randrange(100):02d}"[:5]
        else:
            postal = f"{pre}{rng.randint(0, 9) if len(pre) == 2 else ''} " \
                     f"{rng.choice('ACDEFHKNPRTVWXY')}{rng.randrange(1000):03d}"
    return (ts, street, city, region, postal)


def _lognormal_value(rng: random.Random) -> float:
    return min(8.0, rng.lognormvariate(-0.245, 0.7))  # mean ~1


def build_persons(rng: random.Random, ctx, g_start: int, n: int) -> list[Person]:
    persons: list[Person] = []
    i = 0
    hh_seq = 0
    while i < n:
        # household of 1-4 consecutive persons
        r = rng.random()
        size = 1 if r < 0.78 else 2 if r < 0.92 else 3 if r < 0.97 else 4
        size = min(size, n - i)
        hh_seq += 1
        r = rng.random()
        country = "ES" if r < 0.6 else "GB" if r < 0.8 else "US" if r < 0.9 else "IE"
        family_last = None
        shared_addr = _make_address(rng, country, 0)
        share_phone = size > 1 and rng.random() < 0.55
        share_email = size > 1 and rng.random() < 0.35
        head_idx = g_start + i
        landline = None
        if share_phone:
            landline = (("9" if country == "ES" else "2") + f"{perm8(head_idx, 3):08d}")
            landline = {"ES": "91" + landline[2:], "GB": "207" + landline[2:], "IE": "1" + landline[1:8],
                        "US": "212" + str(2 + int(landline[2]) % 8) + landline[3:9]}[country]
        members = []
        for k in range(size):
            members.append(_build_one(rng, ctx, g_start + i + k, country, head_idx, shared_addr,
                                      landline, family_last))
            if family_last is None:
                family_last = members[0].last
        if share_email:
            h = members[0]
            fam = f"familia.{_ascii_local(h.last.split(' ')[0])}{perm7(head_idx, 5)}@" \
                  f"{rng.choice(vocab.EMAIL_DOMAINS_ES if country == 'ES' else vocab.EMAIL_DOMAINS_EN)}"
            if country != "ES":
                fam = "the" + fam[8:]
            for m in members:
                m.family_email = fam
        persons.extend(members)
        i += size
    return persons


def _build_one(rng, ctx, idx: int, country: str, head_idx: int, shared_addr, landline, family_last):
    t0, days = ctx.t0, ctx.days
    p = Person()
    p.idx = idx
    p.pid = f"P{idx + 1:07d}"
    p.hh = f"H{head_idx + 1:07d}"
    p.country = country
    es = country == "ES"
    p.lang = "es" if es or rng.random() < 0.03 else "en"
    p.gender = "F" if rng.random() < 0.52 else "M"
    if es:
        p.first = rng.choice(vocab.ES_FEMALE if p.gender == "F" else vocab.ES_MALE)
        p.last = f"{rng.choice(vocab.ES_SURNAMES)} {rng.choice(vocab.ES_SURNAMES)}"
    else:
        p.first = rng.choice(vocab.EN_FEMALE if p.gender == "F" else vocab.EN_MALE)
        p.last = rng.choice(vocab.EN_SURNAMES)
    if family_last and rng.random() < 0.7:
        p.last = family_last if not es else family_last.split(" ")[0] + " " + rng.choice(vocab.ES_SURNAMES)
    p.birth = date_str(t0 - rng.randint(18 * 365, 80 * 365) * 86400)
    # signup: ~65% before the window, the rest inside it
    if rng.random() < 0.65:
        p.signup_ts = t0 - rng.randint(1, 6 * 365) * 86400 + rng.randrange(86400)
    else:
        p.signup_ts = t0 + rng.randint(0, days - 60) * 86400 + rng.randrange(86400)
    p.start_day = max(0, (p.signup_ts - t0) // 86400)
    p.value = _lognormal_value(rng)
    p.churn_prop = round(rng.betavariate(2, 6), 4)
    p.churned = False
    p.churn_day = None
    p.churn_ts = None
    lo = p.start_day + 120
    if rng.random() < p.churn_prop * 0.95 and lo < days - 10:
        p.churned = True
        p.churn_day = rng.randint(lo, days - 10)
        p.churn_ts = t0 + p.churn_day * 86400 + rng.randrange(86400)
    p.sat_base = min(0.98, max(0.25, rng.gauss(0.74 - 0.4 * p.churn_prop, 0.12)))
    # identifiers
    p.gmail = False
    dom = rng.choice(vocab.EMAIL_DOMAINS_ES if es else vocab.EMAIL_DOMAINS_EN)
    f, l1 = _ascii_local(p.first), _ascii_local(p.last.split(" ")[0])
    u = perm7(idx)
    style = rng.randrange(4)
    local = (f"{f}.{l1}{u}", f"{f}{l1}{u}", f"{f[0]}{l1}{u}", f"{f}_{l1}.{u}")[style]
    p.email = f"{local}@{dom}"
    p.gmail = dom == "gmail.com"
    p.emails = [p.email]
    if rng.random() < 0.3:
        p.emails.append(f"{f}.{l1}{perm7(idx, 9)}@{rng.choice(vocab.WORK_DOMAINS)}")
    if rng.random() < 0.12:
        d2 = rng.choice(vocab.EMAIL_DOMAINS_ES if es else vocab.EMAIL_DOMAINS_EN)
        p.emails.append(f"{l1}.{f}{perm7(idx, 11)}@{d2}")
    p.family_email = None
    u8 = f"{perm8(idx):08d}"
    # numbers in ranges libphonenumber accepts as valid: ES mobiles 6xx, UK 07[4-9]x, US exchanges 2-9xx
    p.mobile = {"ES": "6" + u8, "GB": "7" + "45789"[int(u8[0]) % 5] + u8[:8], "IE": "8" + "35679"[int(u8[0]) % 5] + u8[1:8],
                "US": rng.choice(("212", "646", "310", "312", "617", "305", "713", "206", "512"))
                + str(2 + int(u8[1]) % 8) + u8[2:8]}[country]
    p.landline = landline
    # addresses, moves, marriage
    if shared_addr[0] == 0 and head_idx == idx or rng.random() < 0.85:
        first_addr = (0,) + shared_addr[1:]
    else:
        first_addr = _make_address(rng, country, 0)
    p.addresses = [first_addr]
    if rng.random() < 0.15:
        move_ts = t0 + rng.randint(30, days - 30) * 86400
        p.addresses.append(_make_address(rng, country, move_ts))
    p.married_last = None
    p.marriage_ts = 0
    if p.gender == "F" and not es and rng.random() < 0.08:
        p.married_last = rng.choice(vocab.EN_SURNAMES)
        p.marriage_ts = t0 + rng.randint(30, days - 30) * 86400
    # channels
    p.crm = rng.random() < 0.9
    p.crm_dup = p.crm and rng.random() < 0.045
    p.loyalty_id = f"LOY{perm8(idx, 1):08d}" if rng.random() < 0.45 else None
    p.consent = rng.random() < 0.68
    ndev = 1 if rng.random() < 0.45 else 2 if rng.random() < 0.7 else 3
    p.devices = []
    for k in range(ndev):
        plat = "web" if k == 0 and rng.random() < 0.7 else rng.choice(("web", "ios", "android"))
        p.devices.append((f"d-{perm13(idx * 4 + k):011x}", plat))
    base = f"{f}{l1}" if rng.random() < 0.5 else f"{f}.{l1}"
    suf = str(perm7(idx, 13))
    p.handles = {}
    if rng.random() < 0.35:
        p.handles["facebook"] = f"{f}.{l1}.{suf}"
    if rng.random() < 0.2:
        p.handles["twitter"] = f"@{base.replace('.', '_')}{suf}"
    if rng.random() < 0.3:
        p.handles["instagram"] = f"{base}_{suf}"
    # which handles are declared in the CRM profile
    p.declared = {k: v for k, v in p.handles.items() if rng.random() < 0.3}
    p.nk = 0
    return p


def truth_row(p: Person) -> tuple:
    return (p.pid, p.hh, p.first, p.last, p.email, f"+{_CC[p.country]}{p.mobile}", p.country,
            f"{p.value:.4f}", f"{p.churn_prop:.4f}", "true" if p.churned else "false",
            date_str(p.churn_ts) if p.churned else "", date_str(p.signup_ts))


_CC = {"ES": "34", "GB": "44", "IE": "353", "US": "1"}
PERSON_COLUMNS = ("person_id", "household_id", "first_name", "last_name", "email", "phone", "country",
                  "latent_value", "churn_propensity", "churned", "churn_date", "signup_date")
