"""The PII categories a column of a table contract (conf/tables/) or a source (conf/sources/) is marked with
(`pii: email`), and how a protected copy may replace such a column. No Spark: sources and contracts load it."""

from __future__ import annotations

import re
from typing import Literal

PiiCategory = Literal["email", "phone", "name", "address", "birth_date", "handle", "free_text", "identifier"]
Protection = Literal["hash", "mask"]

CATEGORIES: dict[str, str] = {
    "email": "an email address",
    "phone": "a phone number",
    "name": "a person's name (first, last, full or display name)",
    "address": "a street line or postal code",
    "birth_date": "a date of birth",
    "handle": "a social-network or review-site handle",
    "free_text": "text a person wrote or that quotes their values (comments, reviews, posts, raw rows, evidence)",
    "identifier": "an identifier of a person or their device (loyalty card, device, cookie, custom attributes)",
}

# what free text's mask replaces (the same syntax in Python and Java, so Spark uses them too)
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE_PATTERN = r"\+?[0-9][0-9 ().-]{5,}[0-9]"
_EMAIL, _PHONE = re.compile(EMAIL_PATTERN), re.compile(PHONE_PATTERN)


def mask_text(value: object, category: str) -> str | None:
    """The mask of one value, as cdp.privacy.pii.masked writes it in Spark (for samples shown in quality pages)."""
    if value is None:
        return None
    s = str(value).strip()
    if category == "email":
        return f"{s[:1]}***@{s.split('@')[-1]}" if s.find("@") > 0 else "***"
    if category == "phone":
        digits = re.sub(r"[^0-9+]", "", s)
        if len(digits) < 7:
            return "***"
        return (f"{digits[:3]} " if digits.startswith("+") else "") + f"*** *** {digits[-3:]}"
    if category == "birth_date":
        return f"{s[:4]}-**-**"
    if category == "free_text":
        return _PHONE.sub("[phone]", _EMAIL.sub("[email]", s))
    return f"{s[:1 if category == 'name' else 2]}***"
