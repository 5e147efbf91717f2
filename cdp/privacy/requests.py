"""Erasure requests: who to forget (an email, a phone, a customer id, or a CSV of them), masked for display and
hashed with a salt for the erasure log. Pure Python: the email is normalised by silver's own column function when
the request is resolved (cdp.privacy.erasure), the phone here by silver's own E.164 parser."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cdp.errors import CdpError
from cdp.silver.phones import to_e164

KINDS = ("email", "phone", "customer_id")
SALT_VARIABLE = "CDP_PII_SALT"
_CUSTOMER_ID = re.compile(r"^C[0-9a-f]{16}$")


@dataclass(frozen=True)
class ErasureRequest:
    """One person to forget, named by one identifier (value as the requester gave it, trimmed)."""

    kind: str
    value: str

    def masked(self) -> str:
        """A form safe to print: enough to tell requests apart, never the value."""
        return mask(self.kind, self.value)

    def phone_e164(self, default_region: str) -> str | None:
        return to_e164(self.value, None, default_region) if self.kind == "phone" else None


def mask(kind: str, value: str) -> str:
    """'jose.garcia@gmail.com' -> 'j***@g***.com', '+34 612 345 678' -> '***678', 'C0123456789abcdef' -> 'C01***'."""
    if kind == "email":
        local, _, domain = value.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{(host or tld)[:1]}***{dot}{tld if host else ''}"
    digits = re.sub(r"\D", "", value)
    if kind == "phone":
        return f"***{digits[-3:]}" if len(digits) > 6 else "***"
    return f"{value[:3]}***"


def request(kind: str, value: str) -> ErasureRequest:
    """A checked request; CdpError (one line, the value masked) when it cannot name anyone."""
    if kind not in KINDS:
        raise CdpError(f"unknown request kind {kind!r}; use one of {', '.join(KINDS)}")
    value = (value or "").strip()
    if not value:
        raise CdpError(f"an empty {kind} names no one; give a value")
    if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise CdpError(f"{mask(kind, value)} is not an email address")
    if kind == "phone" and len(re.sub(r"\D", "", value)) < 7:
        raise CdpError(f"{mask(kind, value)} is not a phone number (fewer than 7 digits)")
    if kind == "customer_id" and not _CUSTOMER_ID.fullmatch(value):
        raise CdpError(f"{mask(kind, value)} is not a customer id (C + 16 hex characters, see gold.customers)")
    return ErasureRequest(kind, value)


def read_requests(path: str | Path) -> list[ErasureRequest]:
    """Requests of a CSV with a header: either a `kind,value` pair per row, or one column per kind (email, phone,
    customer_id) with a value in one of them. Blank lines are skipped; duplicates are kept once."""
    path = Path(path)
    if not path.is_file():
        raise CdpError(f"{path}: requests file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if not ({"kind", "value"} <= set(header) or set(header) & set(KINDS)):
            raise CdpError(f"{path}: expected a header `kind,value` or columns among {', '.join(KINDS)}")
        out: list[ErasureRequest] = []
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            pairs = ([(row.get("kind", "").lower(), row.get("value", ""))] if "kind" in header
                     else [(k, row[k]) for k in KINDS if row.get(k)])
            pairs = [(k, v) for k, v in pairs if k or v]
            if not pairs:
                continue
            if len(pairs) > 1:
                raise CdpError(f"{path} line {line}: give one identifier per row (found {len(pairs)})")
            try:
                out.append(request(*pairs[0]))
            except CdpError as exc:
                raise CdpError(f"{path} line {line}: {exc}") from None
    if not out:
        raise CdpError(f"{path}: no request in the file")
    return list(dict.fromkeys(out))


def salt() -> str:
    """The secret salt of request hashes (shared with the hashed BI views): one line when it is not set."""
    value = os.environ.get(SALT_VARIABLE, "")
    if not value:
        raise CdpError(f"set the environment variable {SALT_VARIABLE} to a secret salt (the erasure log keeps only "
                       "a salted hash of each request), e.g. export CDP_PII_SALT=$(openssl rand -hex 32)")
    return value


def request_hash(req: ErasureRequest, secret: str, normalized: str | None = None) -> str:
    """HMAC-SHA256 of kind and the normalised value, keyed with the salt: the same person asked twice gives the
    same hash, and without the salt no one can test a guess against the log."""
    text = f"{req.kind}\x1f{normalized or req.value}"
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()
