"""Record builders for the transactional channels: CRM, loyalty, e-commerce, clickstream, store."""

from __future__ import annotations

import random

from cdp.synth import noise, vocab
from cdp.synth.behaviour import Ctx, closeness, day_of, sample_times
from cdp.synth.people import Person, perm8
from cdp.synth.timeutil import date_str, iso_offset, iso_z, sql_ts

SITE = "https://www.novamarket.com"
_BOOL_STYLES = (("true", "false"), ("yes", "no"), ("1", "0"), ("TRUE", "FALSE"))
_STORES_BY_CITY: dict[str, list[str]] = {}
for _sid, _city in vocab.STORES:
    _STORES_BY_CITY.setdefault(_city, []).append(_sid)
_STORES_BY_COUNTRY = {
    "ES": [s for s, c in vocab.STORES if vocab.STORE_CITY_CCY[c] == "EUR" and c != "Dublin"],
    "GB": [s for s, c in vocab.STORES if c in ("London", "Manchester")],
    "IE": ["ST-DUB-01"], "US": ["ST-NYC-01"],
}
_STORE_CITY = dict(vocab.STORES)


def emit(out, source: str, row: tuple, pid: str) -> None:
    out.sinks[source].append(row)
    out.owners.append((source, row[0], pid))


def country_value(rng: random.Random, iso: str, p_name: float = 0.12) -> str:
    if rng.random() < p_name:
        return rng.choice(vocab.COUNTRY_NAMES[iso])
    return iso


def last_active_day(ctx: Ctx, p: Person) -> int:
    return min(ctx.days - 1, p.churn_day + 30) if p.churned else ctx.days - 1


def rand_ts(rng: random.Random, ctx: Ctx, lo_day: int, hi_day: int) -> int:
    d = rng.randint(max(0, lo_day), max(max(0, lo_day), hi_day))
    return ctx.t0 + d * 86400 + rng.randint(7 * 3600, 22 * 3600)


# ---- CRM and loyalty --------------------------------------------------------------------

def crm(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    for dup in (False, True) if p.crm_dup else (False,):
        upd = rand_ts(rng, ctx, p.start_day, last_active_day(ctx, p))
        pn = 0.7 if dup else 0.1
        street, city, region, postal = p.address_at(upd if not dup else ctx.t0)
        if dup and len(p.emails) > 1 and rng.random() < 0.5:
            email = p.emails[1]
        else:
            email = noise.email_variant(rng, p.email_at(rng), 0.5 if dup else 0.08)
        email = noise.junk_or(rng, email, 0.012, vocab.JUNK_EMAILS, 0.03)
        g = rng.random()
        gender = (p.gender if g < 0.7 else {"M": "male", "F": "female"}[p.gender] if g < 0.85
                  else "X" if g < 0.87 else "")
        consent_style = rng.choice(_BOOL_STYLES)
        handles = []
        for plat in ("facebook", "twitter", "instagram"):
            h = p.declared.get(plat)
            if h and rng.random() < 0.2:
                h = h.lstrip("@") if plat == "twitter" else h.upper() if rng.random() < 0.5 else "@" + h
            handles.append(h or "")
        signup = p.signup_ts + (rng.randint(30, 400) * 86400 if dup else 0)
        row = (
            f"CRM-{perm8(p.idx * 2 + dup):08d}",
            noise.junk_or(rng, noise.first_variant(rng, p.first, pn), 0.004, vocab.JUNK_NAMES, 0.01) or "",
            noise.last_variant(rng, p.last_at(upd), pn),
            email or "",
            noise.phone_noisy(rng, p.country, p.phone_at(rng), 0.01, 0.05) or "",
            noise.street_variant(rng, street, 0.1) if rng.random() > 0.02 else "",
            city if rng.random() > 0.02 else "",
            region if rng.random() > 0.1 else "",
            noise.postal_variant(rng, postal, 0.05),
            country_value(rng, p.country),
            p.birth if rng.random() > 0.06 else "",
            gender,
            date_str(min(signup, upd)),
            consent_style[0] if p.consent else consent_style[1],
            *handles,
            sql_ts(upd),
        )
        emit(out, "crm_customers", row, p.pid)


def loyalty(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    last = last_active_day(ctx, p)
    enrolled = max(p.signup_ts, ctx.t0 - 3 * 365 * 86400) + rng.randint(0, 200) * 86400 + rng.randrange(86400)
    enrolled = min(enrolled, ctx.t0 + last * 86400)
    upd = max(enrolled, rand_ts(rng, ctx, p.start_day, last))
    tier = "gold" if p.value > 2.2 else "silver" if p.value > 1.0 else "bronze"
    email = noise.junk_or(rng, noise.email_variant(rng, p.email_at(rng), 0.2), 0.015, vocab.JUNK_EMAILS, 0.04)
    row = (
        p.loyalty_id,
        noise.first_variant(rng, p.first, 0.2),
        noise.last_variant(rng, p.last_at(upd), 0.2),
        email or "",
        noise.phone_noisy(rng, p.country, p.phone_at(rng), 0.015, 0.06) or "",
        noise.postal_variant(rng, p.address_at(upd)[3], 0.1) if rng.random() > 0.03 else "",
        tier,
        int(p.value * rng.randint(80, 900)) if not p.churned else rng.randint(0, 150),
        sql_ts(enrolled),
        sql_ts(upd),
    )
    emit(out, "loyalty_members", row, p.pid)


# ---- e-commerce and clickstream -----------------------------------------------------------

def _order(rng: random.Random, ctx: Ctx, p: Person, ts: int, first_product, device_id, out) -> str:
    oid = f"ORD-{p.next_key():013d}"
    ts = min(ts, ctx.t_end)
    c = closeness(p, day_of(ctx, ts))
    r = rng.random()
    status = ("completed" if r < 0.84 - 0.25 * c else "cancelled" if r < 0.89 - 0.1 * c
              else "payment_failed" if r < 0.95 - 0.05 * c else "returned")
    pay_status = {"completed": "captured", "cancelled": "refunded", "payment_failed": "failed",
                  "returned": "refunded"}[status]
    ccy = vocab.CURRENCY[p.country]
    fx = vocab.FX[ccy]
    ccy_out = ccy.lower() if rng.random() < 0.03 else ccy
    nlines = 1 if r < 0.5 else 2 if rng.random() < 0.6 else rng.randint(3, 5)
    month = int(date_str(ts)[5:7])
    disc = 0.8 if month in (1, 7, 11) and rng.random() < 0.5 else 1.0
    total = 0.0
    prods = [first_product] + [rng.choice(vocab.PRODUCTS) for _ in range(nlines - 1)]
    for ln, (sku, name, cat, price) in enumerate(prods, 1):
        qty = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        unit = round(price * fx * disc, 2)
        total += unit * qty
        emit(out, "ecommerce_order_lines",
             (f"{oid}-{ln}", oid, ln, sku, name, cat, qty, unit, ccy), p.pid)
    if total < 50:
        total += 4.95
    street, city, _region, postal = p.address_at(ts)
    first = noise.first_variant(rng, p.first, 0.15)
    last = noise.last_variant(rng, p.last_at(ts), 0.15)
    email = noise.junk_or(rng, noise.email_variant(rng, p.email_at(rng), 0.15), 0.006, vocab.JUNK_EMAILS, 0.01)
    pm = rng.choice(("card", "card", "card", "paypal", "apple_pay", "bizum" if p.country == "ES" else "klarna"))
    row = (
        oid, iso_offset(ts, p.country), email,
        noise.phone_noisy(rng, p.country, p.phone_at(rng), 0.01, 0.15),
        noise.full_name(rng, first, last),
        p.loyalty_id if p.loyalty_id and rng.random() < 0.4 else None,
        noise.street_variant(rng, street, 0.15), city, noise.postal_variant(rng, postal, 0.1),
        country_value(rng, p.country, 0.08), status, pm, pay_status, ccy_out, round(total, 2),
        device_id,
    )
    emit(out, "ecommerce_orders", row, p.pid)
    return oid


def _login(rng: random.Random, p: Person):
    r = rng.random()
    fb = p.handles.get("facebook")
    if fb and r < 0.35:
        return (p.email if rng.random() < 0.4 else None), "facebook", fb
    if r < 0.8 or not p.gmail:
        return noise.email_variant(rng, p.email_at(rng), 0.05).strip(), "email", None
    return p.email, "google", None


def clickstream(rng: random.Random, ctx: Ctx, p: Person, out) -> list[tuple[str, int]]:
    """Web/app sessions; purchases create orders. Returns (touchpoint, ts) for surveys."""
    touches = []
    sessions = sample_times(rng, ctx, p, 10.0 * p.value)
    cookies = {}
    seen_dev = set()
    for ts in sessions:
        dev, plat = p.devices[0] if rng.random() < 0.6 else rng.choice(p.devices)
        cookie = None
        if plat == "web":
            if dev not in cookies or rng.random() < 0.3:  # cookies rotate / get cleared
                cookies[dev] = f"ck-{p.next_key():013d}"
            cookie = cookies[dev]
        sid = f"S{p.next_key():013d}"
        prefix = f"{SITE}/{p.lang}" if plat == "web" else "app:/"
        events = []
        t = ts
        first_on_dev = dev not in seen_dev
        seen_dev.add(dev)
        events.append(("page_view", f"{prefix}/" if rng.random() < 0.6 else f"{prefix}/c/{rng.choice(vocab.PRODUCTS)[2]}",
                       None, None, None, None, None))
        if rng.random() < (0.65 if first_on_dev and plat != "web" else 0.22):
            events.append(("login", f"{prefix}/login", None, None, *_login(rng, p)))
        product = None
        for _ in range(0 if rng.random() < 0.25 else rng.randint(1, 3)):
            product = rng.choice(vocab.PRODUCTS)
            events.append(("product_view", f"{prefix}/p/{product[0]}", product[0], None, None, None, None))
        if product and rng.random() < 0.42:
            events.append(("add_to_cart", f"{prefix}/cart", product[0], None, None, None, None))
            if rng.random() < 0.62:
                events.append(("checkout_start", f"{prefix}/checkout", None, None, None, None, None))
                if rng.random() < 0.7:
                    oid = _order(rng, ctx, p, ts + 60 * len(events) + 120, product,
                                 dev if rng.random() < 0.75 else None, out)
                    events.append(("purchase", f"{prefix}/checkout/confirmation", product[0], oid, None, None, None))
                    touches.append(("delivery", ts + 3 * 86400))
        elif rng.random() < 0.03:
            touches.append(("web", ts))
        for et, url, prod, oid, lemail, lprov, lhandle in events:
            emit(out, "clickstream_events", (
                f"EV{p.next_key():013d}", iso_z(min(t, ctx.t_end)), cookie, dev, plat, sid, et, url, prod, oid,
                lemail, lprov, lhandle), p.pid)
            t += rng.randint(5, 150)
    # orders placed without a tracked session (ad blockers, call-in orders)
    for ts in sample_times(rng, ctx, p, 0.8 * p.value):
        _order(rng, ctx, p, ts, rng.choice(vocab.PRODUCTS), None, out)
        touches.append(("delivery", ts + 3 * 86400))
    return touches


def store(rng: random.Random, ctx: Ctx, p: Person, out) -> list[tuple[str, int]]:
    touches = []
    home = p.address_at(ctx.t0)[1]
    local_stores = _STORES_BY_CITY.get(home)
    rate = 3.2 * p.value ** 0.5 if local_stores else 0.25
    for ts in sample_times(rng, ctx, p, rate, store=True):
        sid = rng.choice(local_stores) if local_stores and rng.random() < 0.92 else rng.choice(_STORES_BY_COUNTRY[p.country])
        city = _STORE_CITY[sid]
        bought = rng.random() < 0.72
        amount = round(rng.lognormvariate(3.2, 0.7) * (0.6 + 0.4 * p.value), 2) if bought else None
        receipt = noise.email_variant(rng, p.email_at(rng), 0.2) if rng.random() < 0.12 else None
        row = (f"VIS-{p.next_key():013d}", sid, city, ts,
               p.loyalty_id if p.loyalty_id and rng.random() < 0.55 else None,
               receipt, amount, vocab.STORE_CITY_CCY[city], rng.randint(1, 6) if bought else 0)
        emit(out, "store_visits", row, p.pid)
        touches.append(("store", ts + 3600))
    return touches
