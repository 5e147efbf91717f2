"""Record builders for the engagement and voice-of-customer channels:
email marketing, call center, surveys, suggestion box, review sites and social media."""

from __future__ import annotations

import random

from cdp.synth import noise, vocab
from cdp.synth.behaviour import (
    Ctx,
    closeness,
    csat_score,
    day_of,
    nps_score,
    sample_times,
    satisfaction,
    sentiment,
    taper,
)
from cdp.synth.channels import _STORES_BY_CITY, SITE, emit, last_active_day
from cdp.synth.people import Person, perm7
from cdp.synth.timeutil import iso_naive, iso_z, madrid_ddmm, sql_ts


def _fill(rng: random.Random, template: str, p: Person, days_hint: int = 0) -> str:
    return template.format(product=rng.choice(vocab.PRODUCTS)[1], city=p.address_at(0)[1],
                           days=days_hint or rng.randint(5, 30), brand=vocab.BRAND)


def email_marketing(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    if not p.consent and rng.random() < 0.85:
        return
    addr = p.emails[0] if rng.random() < 0.85 else p.email_at(rng)
    if rng.random() < 0.01:
        addr = rng.choice(vocab.JUNK_EMAILS[:2])
    addr = noise.email_variant(rng, addr, 0.06)
    engagement = min(1.0, 0.45 + 0.25 * p.value)
    p_recv = min(0.5, 0.2 * (0.7 + 0.3 * p.value))
    t_end = ctx.t_end
    last = last_active_day(ctx, p) + (400 if rng.random() < 0.5 else 0)
    for camp in ctx.campaigns[p.lang]:
        d = camp.day
        if d < p.start_day or d > last:
            continue
        if rng.random() >= p_recv:
            continue
        sent = ctx.t0 + d * 86400 + rng.randint(8 * 3600, 11 * 3600)

        def ev(et: str, ts: int, link: str = "", camp=camp) -> None:
            emit(out, "email_events", (f"EE{p.next_key():013d}", camp.campaign_id, camp.name, addr, et,
                                       sql_ts(ts), link), p.pid)

        ev("sent", sent)
        if addr in vocab.JUNK_EMAILS or rng.random() < 0.012:
            ev("bounce", sent + rng.randint(5, 600))
            return  # hard bounce: removed from the list
        tp = taper(p, d)
        if rng.random() < 0.4 * engagement * tp:
            t_open = sent + rng.randint(60, 72 * 3600)
            if t_open > t_end:
                continue
            ev("open", t_open)
            if rng.random() < 0.3 * (0.5 + 0.5 * tp):
                t_click = min(t_end, t_open + rng.randint(5, 600))
                ev("click", t_click, f"{SITE}{camp.link}?utm_source=email&utm_campaign={camp.campaign_id}")
        c = closeness(p, d)
        if rng.random() < 0.002 + 0.05 * c + (0.25 if p.churned and d >= p.churn_day else 0):
            ev("unsubscribe", min(t_end, sent + rng.randint(3600, 96 * 3600)))
            return


_REASONS = ("billing", "delivery", "product_question", "complaint", "cancellation")
_REASON_CUM = (0.2, 0.5, 0.8, 0.95, 1.0)


def _caller(rng: random.Random, p: Person, ts: int, p_blank: float) -> str:
    if rng.random() < p_blank:
        return ""
    if rng.random() < 0.01:
        return rng.choice(vocab.JUNK_NAMES)
    return noise.full_name(rng, noise.first_variant(rng, p.first, 0.25), noise.last_variant(rng, p.last_at(ts), 0.25))


def callcenter(rng: random.Random, ctx: Ctx, p: Person, out) -> list[tuple[str, int]]:
    calls = []  # (ts, direction, reason, campaign)
    for ts in sample_times(rng, ctx, p, 0.7, call=True):
        r = rng.random()
        calls.append((ts, "inbound", next(x for x, c in zip(_REASONS, _REASON_CUM, strict=True) if r < c), None))
    if p.churned:
        cd = p.churn_day
        for ts in sample_times(rng, ctx, p, 1.8 * ctx.days / 90, call=True, lo_day=cd - 90, hi_day=cd - 1,
                               use_taper=False):
            if rng.random() < closeness(p, day_of(ctx, ts)) + 0.2:
                calls.append((ts, "inbound", "complaint" if rng.random() < 0.75 else "billing", None))
        if rng.random() < 0.4:
            for ts in sample_times(rng, ctx, p, 1.0 * ctx.days / 30, call=True, lo_day=cd, hi_day=cd + 30,
                                   use_taper=False)[:1]:
                calls.append((ts, "inbound", "cancellation", None))
    if p.consent and rng.random() < 0.12:
        for ts in sample_times(rng, ctx, p, 1.5, call=True)[:2]:
            q = (int(iso_z(ts)[5:7]) - 1) // 3 + 1
            calls.append((ts, "outbound", "telesales", f"TS-{iso_z(ts)[:4]}Q{q}"))
    calls.sort()
    touches = []
    for ts, direction, reason, camp in calls:
        if reason == "telesales":
            r = rng.random()
            outcome = "sale" if r < 0.12 else "no_sale" if r < 0.6 else "no_answer"
        elif reason == "complaint":
            outcome = rng.choice(("resolved", "escalated", "escalated", "callback"))
        elif reason == "cancellation":
            outcome = rng.choice(("resolved", "resolved", "escalated"))
        else:
            outcome = "resolved" if rng.random() < 0.8 else "callback"
        dur = rng.randint(0, 25) if outcome == "no_answer" else int(rng.lognormvariate(5.3, 0.6))
        note = "" if rng.random() < 0.12 or outcome == "no_answer" else \
            _fill(rng, rng.choice(vocab.CALL_NOTES[(p.lang, reason)]), p)
        row = (f"CC-{p.next_key():013d}", direction,
               noise.phone_noisy(rng, p.country, p.phone_at(rng), 0.01, 0.03 if direction == "inbound" else 0) or "",
               _caller(rng, p, ts, 0.25 if direction == "inbound" else 0.05),
               madrid_ddmm(ts), dur, reason, outcome, camp or "", f"AG{rng.randint(1, 140):03d}", note)
        emit(out, "callcenter_contacts", row, p.pid)
        if direction == "inbound":
            touches.append(("callcenter", ts + 3600))
    return touches


_SURVEY_P = {"delivery": 0.1, "store": 0.08, "callcenter": 0.25, "web": 0.5}


def surveys(rng: random.Random, ctx: Ctx, p: Person, touches: list, out) -> None:
    t_end = ctx.t_end
    for touch, ts in touches:
        if rng.random() >= _SURVEY_P[touch]:
            continue
        sub = ts + rng.randint(600, 2 * 86400)
        if sub > t_end:
            continue
        s = satisfaction(rng, p, day_of(ctx, sub))
        is_csat = rng.random() < 0.6
        comment = ""
        if rng.random() < 0.35:
            comment = _fill(rng, rng.choice(vocab.SURVEY_COMMENTS[(p.lang, sentiment(s))]), p)
        email = noise.junk_or(rng, noise.email_variant(rng, p.email_at(rng), 0.12), 0.01, vocab.JUNK_EMAILS, 0.05)
        row = (f"SRV-{p.next_key():013d}", "csat" if is_csat else "nps", touch, email or "",
               _caller(rng, p, sub, 0.5), csat_score(rng, s) if is_csat else "",
               "" if is_csat else nps_score(rng, s), comment, iso_naive(sub))
        emit(out, "survey_responses", row, p.pid)


def suggestions(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    if rng.random() >= 0.045:
        return
    city = p.address_at(0)[1]
    for ts in sample_times(rng, ctx, p, 1.3 * ctx.days / max(1, ctx.days - p.start_day))[:2]:
        named = rng.random() < 0.45
        stores = _STORES_BY_CITY.get(city)
        row = (f"SUG-{p.next_key():013d}", iso_z(ts),
               noise.full_name(rng, noise.first_variant(rng, p.first, 0.3), p.last_at(ts).split(" ")[0])
               if named else None,
               noise.email_variant(rng, p.email_at(rng), 0.15) if rng.random() < 0.5 else None,
               rng.choice(stores) if stores and rng.random() < 0.5 else None,
               _fill(rng, rng.choice(vocab.SUGGESTIONS[p.lang]), p), p.lang)
        emit(out, "suggestion_box", row, p.pid)


def _display_name(rng: random.Random, p: Person, ts: int) -> str:
    first = noise.first_variant(rng, p.first, 0.35)
    last = p.last_at(ts).split(" ")[0]
    r = rng.random()
    if r < 0.35:
        return f"{first} {last[0]}."
    if r < 0.7:
        return noise.full_name(rng, first, noise.last_variant(rng, last, 0.3))
    if r < 0.85:
        return first
    return vocab.strip_accents(f"{first} {last}").lower()


def reviews(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    times = []
    if rng.random() < 0.09:
        times = sample_times(rng, ctx, p, 1.5 * ctx.days / max(1, ctx.days - p.start_day))[:3]
    if p.churned and rng.random() < 0.25:
        times += sample_times(rng, ctx, p, ctx.days / 30, lo_day=p.churn_day - 20, hi_day=p.churn_day + 10,
                              use_taper=False)[:1]
    f = vocab.strip_accents(p.first).lower().replace(" ", "")
    for ts in times:
        site = rng.choice(("trustpilot", "google", "yelp"))
        reuse = [h for k, h in p.handles.items() if k != "facebook"]
        handle = rng.choice(reuse).lstrip("@") if reuse and rng.random() < 0.35 else \
            f"{f}{p.last[0].lower()}{perm7(p.idx, 17 + len(site))}"
        s = satisfaction(rng, p, day_of(ctx, ts))
        stars = min(5, max(1, int(round(1 + 4 * s + rng.gauss(0, 0.6)))))
        sent = "pos" if stars >= 4 else "neu" if stars == 3 else "neg"
        prod = rng.choice(vocab.PRODUCTS)[0] if rng.random() < 0.5 else None
        row = (f"REV-{p.next_key():013d}", site, handle, _display_name(rng, p, ts), stars,
               rng.choice(vocab.REVIEW_TITLES[(p.lang, sent)]),
               _fill(rng, rng.choice(vocab.REVIEW_TEXTS[(p.lang, sent)]), p), iso_z(ts), prod)
        emit(out, "review_site", row, p.pid)


def social(rng: random.Random, ctx: Ctx, p: Person, out) -> None:
    if not p.handles:
        return
    hi = last_active_day(ctx, p)
    show_email = rng.random() < 0.05
    for plat, handle in p.handles.items():
        n_exp = 2.0 * (0.5 + 0.5 * p.value) if rng.random() < 0.5 else 0.0
        if p.churned and rng.random() < 0.3:
            n_exp += 1.0
        times = sample_times(rng, ctx, p, n_exp * ctx.days / max(1, ctx.days - p.start_day), hi_day=hi,
                             use_taper=False)
        dn = _display_name(rng, p, 0)
        for ts in times[:12]:
            s = satisfaction(rng, p, day_of(ctx, ts))
            brand = rng.random() < 0.6
            if brand:
                text = _fill(rng, rng.choice(vocab.SOCIAL_POSTS[(p.lang, sentiment(s))]), p)
            else:
                text = _fill(rng, rng.choice(vocab.OFF_TOPIC_POSTS[p.lang]), p)
            row = (f"SP-{p.next_key():013d}", plat, handle, dn, p.email if show_email else None, text, iso_z(ts),
                   brand, int(rng.lognormvariate(1.5, 1.3)))
            emit(out, "social_posts", row, p.pid)
