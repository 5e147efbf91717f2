"""Identity noise: how the same person's attributes get mangled by each channel."""

from __future__ import annotations

import random

from cdp.synth import vocab

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(rng: random.Random, s: str) -> str:
    """One character edit: substitute, delete, insert or transpose."""
    if len(s) < 3:
        return s
    i = rng.randrange(1, len(s) - 1)
    op = rng.randrange(4)
    if op == 0:
        return s[:i] + rng.choice(_LETTERS) + s[i + 1:]
    if op == 1:
        return s[:i] + s[i + 1:]
    if op == 2:
        return s[:i] + rng.choice(_LETTERS) + s[i:]
    return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]


def case_ws(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.35:
        return s.upper()
    if r < 0.65:
        return s.lower()
    if r < 0.85:
        return "  " + s + " "
    return s.replace(" ", "  ")


def first_variant(rng: random.Random, first: str, p: float) -> str:
    if rng.random() >= p:
        return first
    r = rng.random()
    nick = vocab.NICKNAMES.get(first)
    if nick and r < 0.3:
        return rng.choice(nick)
    if r < 0.55 and first != vocab.strip_accents(first):
        return vocab.strip_accents(first)
    if r < 0.7:
        return typo(rng, first)
    if r < 0.8 and " " in first:  # "María José" -> "María"
        return first.split(" ")[0]
    if r < 0.85:
        return first[0] + "."
    return case_ws(rng, first)


def last_variant(rng: random.Random, last: str, p: float) -> str:
    if rng.random() >= p:
        return last
    r = rng.random()
    if r < 0.3 and " " in last:  # drop second Spanish surname
        return last.split(" ")[0]
    if r < 0.6 and last != vocab.strip_accents(last):
        return vocab.strip_accents(last)
    if r < 0.75:
        return typo(rng, last)
    if r < 0.8 and "'" in last:
        return last.replace("'", "")
    return case_ws(rng, last)


def full_name(rng: random.Random, first: str, last: str, p_swap: float = 0.06) -> str:
    r = rng.random()
    if r < p_swap * 0.5:
        return f"{last}, {first}"
    if r < p_swap:
        return f"{last.upper()} {first}"
    return f"{first} {last}"


def junk_or(rng: random.Random, value: str | None, p_junk: float, junk: tuple[str, ...],
            p_blank: float = 0.0) -> str | None:
    r = rng.random()
    if r < p_junk:
        return rng.choice(junk)
    if r < p_junk + p_blank:
        return None
    return value


def email_variant(rng: random.Random, email: str, p: float) -> str:
    if rng.random() >= p:
        return email
    local, _, domain = email.partition("@")
    r = rng.random()
    if domain == "gmail.com" and r < 0.45:
        plain = local.replace(".", "")
        if rng.random() < 0.5:  # gmail ignores dots
            cut = rng.sample(range(1, len(plain)), min(2, len(plain) - 1))
            for c in sorted(cut, reverse=True):
                plain = plain[:c] + "." + plain[c:]
        else:
            plain = local
        if rng.random() < 0.6:
            plain += "+" + rng.choice(("promo", "shop", "novamarket", "news", "compras"))
        return f"{plain}@{rng.choice(('gmail.com', 'gmail.com', 'googlemail.com'))}"
    if r < 0.7:
        return email.upper() if rng.random() < 0.3 else local.capitalize() + "@" + domain.capitalize()
    if r < 0.85:
        return " " + email + " "
    return typo(rng, local) + "@" + domain


# ---- phones -------------------------------------------------------------------------------

def phone_e164(country: str, national: str) -> str:
    cc = {"ES": "34", "GB": "44", "IE": "353", "US": "1"}[country]
    return f"+{cc}{national}"


def phone_format(rng: random.Random, country: str, n: str) -> str:
    """Format a national number (no trunk prefix) in one of the usual ways."""
    r = rng.randrange(7)
    if country == "ES":  # n = 9 digits
        return (f"+34 {n[:3]} {n[3:6]} {n[6:]}", f"0034{n}", f"{n[:3]}-{n[3:6]}-{n[6:]}", n,
                f"({n[:3]}) {n[3:6]} {n[6:]}", f"+34{n}", f"{n[:3]} {n[3:5]} {n[5:7]} {n[7:]}")[r]
    if country == "GB":  # n = 10 digits, 7xxx...
        return (f"+44 {n[:4]} {n[4:]}", f"0{n[:4]} {n[4:]}", f"0{n}", f"+44{n}", f"0044 {n[:4]} {n[4:]}",
                f"+44 (0){n[:4]} {n[4:]}", f"0{n[:4]}-{n[4:]}")[r]
    if country == "IE":  # n = 9 digits, 8x...
        return (f"+353 {n[:2]} {n[2:5]} {n[5:]}", f"0{n[:2]} {n[2:5]} {n[5:]}", f"0{n}", f"+353{n}",
                f"00353 {n}", f"(0{n[:2]}) {n[2:5]} {n[5:]}", f"0{n[:2]}-{n[2:5]}-{n[5:]}")[r]
    return (f"+1 {n[:3]} {n[3:6]} {n[6:]}", f"({n[:3]}) {n[3:6]}-{n[6:]}", f"{n[:3]}-{n[3:6]}-{n[6:]}", n,
            f"+1{n}", f"1-{n[:3]}-{n[3:6]}-{n[6:]}", f"{n[:3]}.{n[3:6]}.{n[6:]}")[r]


def phone_noisy(rng: random.Random, country: str, n: str, p_junk: float = 0.01,
                p_blank: float = 0.03) -> str | None:
    r = rng.random()
    if r < p_junk:
        return rng.choice(vocab.JUNK_PHONES)
    if r < p_junk + p_blank:
        return None
    return phone_format(rng, country, n)


# ---- addresses ----------------------------------------------------------------------------

def street_variant(rng: random.Random, street: str, p: float) -> str:
    if rng.random() >= p:
        return street
    r = rng.random()
    if r < 0.45:
        for a, b in vocab.STREET_ABBREV:
            if a in street:
                return street.replace(a, b, 1)
        return street.lower()
    if r < 0.7:
        return vocab.strip_accents(street)
    if r < 0.85:
        return street.upper()
    return street.replace(",", "")


def postal_variant(rng: random.Random, postal: str, p: float) -> str:
    if rng.random() >= p:
        return postal
    if " " in postal:
        return postal.replace(" ", "") if rng.random() < 0.6 else postal.lower()
    return postal[1:] if postal.startswith("0") else postal + " "
