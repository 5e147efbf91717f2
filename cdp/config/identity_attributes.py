"""The identity attributes conf/identity.yaml may name: silver.identity_records' columns, those derived while
resolving, and the file's own custom attributes (`custom_attributes`: kind and normalization). Every section of
the file checks the attributes it names with `_check_attribute`, knowing the custom attributes of the file being
validated (`_declared`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from pydantic import Field

from cdp.config.loading import Strict

# Columns of silver.identity_records a rule, a cap or a survivorship entry may name (see its contract).
IDENTITY_ATTRIBUTES = (
    "email", "email_raw", "phone", "phone_raw", "first_name", "last_name", "first_name_match", "last_name_match",
    "full_name_display", "birth_date", "gender", "street", "postal_code", "city", "region", "country",
    "loyalty_id", "device_id", "cookie_id", "facebook_handle", "twitter_handle", "instagram_handle", "review_handle",
)
# Derived while resolving (not stored in silver): the first name with nicknames mapped to the full form, and
# each social handle without its separators (ana.garcia_84 on one site is anagarcia84 on another).
HANDLE_ATTRIBUTES = ("facebook_handle", "twitter_handle", "instagram_handle", "review_handle")
DERIVED_ATTRIBUTES = ("first_name_canonical", *(f"{h}_key" for h in HANDLE_ATTRIBUTES))


# The custom attributes of the file being validated (IdentityConfig sets them before its sections are checked).
_DECLARED: ContextVar[tuple[str, ...]] = ContextVar("custom_identity_attributes", default=())


@contextmanager
def _declared(names: tuple[str, ...]) -> Iterator[None]:
    token = _DECLARED.set(names)
    try:
        yield
    finally:
        _DECLARED.reset(token)


def _check_attribute(name: str, what: str, derived: bool = False) -> str:
    custom = _DECLARED.get()
    known = IDENTITY_ATTRIBUTES + (DERIVED_ATTRIBUTES if derived else ()) + custom
    if name not in known:
        raise ValueError(f"{what} '{name}' is not a column of silver.identity_records nor a custom attribute; "
                         f"declare it under custom_attributes (kind, normalize) or choose from {', '.join(known)}")
    return name


AttributeKind = Literal["identifier", "name", "date", "postal_code", "text"]
Normalization = Literal["trim", "upper", "lower", "digits_only", "strip_punctuation", "fold_accents",
                        "collapse_spaces"]
# What a kind does to a value when `normalize` is not given (cdp.silver.canonical applies them).
DEFAULT_NORMALIZATION: dict[str, list[str]] = {
    "identifier": ["trim", "collapse_spaces"], "name": ["fold_accents", "lower", "strip_punctuation", "collapse_spaces"],
    "date": ["trim"], "postal_code": ["trim", "upper", "collapse_spaces"],
    "text": ["fold_accents", "lower", "collapse_spaces"],
}


class CustomAttribute(Strict):
    """An identity attribute the project does not know (national id, passport, membership number, ...): a source
    maps a column onto it under silver.identity.fields, and rules, comparisons, blocking, junk guards, caps and
    survivorship name it like a built-in attribute."""

    kind: AttributeKind = Field("identifier", description=(
        "identifier: an id that names one person (identifying, never frequency-exempt); name, date (parsed to a "
        "date: yyyy-MM-dd, yyyyMMdd or d/M/yyyy), postal_code, text: shared by many people by nature"))
    normalize: list[Normalization] | None = Field(None, description="Steps applied in order; default per kind")
    identifying: bool | None = Field(None, description="Does holding it make a record identifiable? Default: kind identifier")
    description: str = ""

    @property
    def steps(self) -> list[str]:
        return list(self.normalize) if self.normalize is not None else DEFAULT_NORMALIZATION[self.kind]

    @property
    def is_identifying(self) -> bool:
        return self.kind == "identifier" if self.identifying is None else self.identifying
