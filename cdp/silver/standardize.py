"""Standardization: pure, deterministic Column functions (no I/O) that turn messy strings into canonical values.

Every function returns NULL for a value it cannot parse and never raises on data (Spark 4 runs with ANSI on,
so only try_* parsers and guarded casts are used). Only phones need a library (see cdp.silver.phones).
"""

from __future__ import annotations

import re
import unicodedata

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp.config.checks import check_timezone
from cdp.frames import literal_once
from cdp.silver.phones import normalize_phone

__all__ = [
    "display_name", "fold_accents", "match_name", "normalize_country", "normalize_currency", "normalize_email",
    "normalize_gender", "normalize_handle", "normalize_phone", "normalize_postal_code", "parse_bool",
    "split_full_name", "to_amount", "to_date_safe", "to_utc_timestamp",
]

# ---- maps -------------------------------------------------------------------------------------------------

_FOLD_EXTRA = {"Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "Ħ": "H", "ħ": "h", "ı": "i"}


def _accent_table() -> tuple[str, str]:
    """(accented, plain) strings for F.translate: every Latin letter U+00C0..U+024F with a one-letter ASCII base."""
    src, dst = [], []
    for cp in range(0x00C0, 0x0250):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        base = _FOLD_EXTRA.get(ch, base)
        if len(base) == 1 and base.isascii() and base.isalpha() and base != ch:
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


ACCENTED, UNACCENTED = _accent_table()

CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "US$": "USD", "EURO": "EUR", "EUROS": "EUR"}
_CURRENCY_CODES = """
    EUR GBP USD CHF SEK NOK DKK ISK PLN CZK HUF RON BGN TRY UAH RUB MXN BRL ARS CLP COP PEN UYU JPY CNY HKD
    SGD KRW INR IDR THB MYR PHP TWD VND AUD NZD CAD ZAR ILS AED SAR EGP MAD NGN KES
"""
ISO_CURRENCIES = frozenset(_CURRENCY_CODES.split())
_MONEY_UNIT = r"(?:\p{Sc}|(?i:" + "|".join(sorted(ISO_CURRENCIES)) + "))"
_AMOUNT = rf"^([+-]?){_MONEY_UNIT}?([+-]?)(\d[\d.,]*){_MONEY_UNIT}?$"
_SCIENTIFIC = r"^[+-]?\d+(\.\d+)?[eE][+-]?\d{1,3}$"

_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
    FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
    IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_COUNTRY_CODES.split())

# Keys are lowercase, accent-folded, letters and single spaces only ("EE.UU." -> "eeuu", "España" -> "espana").
_COUNTRY_NAMES = {
    "ES": "esp|spain|espana|kingdom of spain|reino de espana",
    "GB": "uk|gbr|united kingdom|great britain|britain|gran bretana|reino unido|england|inglaterra|scotland|"
          "escocia|wales|gales|northern ireland|irlanda del norte",
    "US": "usa|united states|united states of america|america|estados unidos|estados unidos de america|eeuu",
    "IE": "irl|ireland|republic of ireland|irlanda|eire",
    "FR": "fra|france|francia", "DE": "deu|germany|alemania|deutschland", "IT": "ita|italy|italia",
    "PT": "prt|portugal", "MX": "mex|mexico|mejico", "AR": "arg|argentina",
    "NL": "nld|netherlands|the netherlands|holland|holanda|paises bajos", "BE": "bel|belgium|belgica",
    "CH": "che|switzerland|suiza", "AT": "aut|austria", "SE": "swe|sweden|suecia", "NO": "nor|norway|noruega",
    "DK": "dnk|denmark|dinamarca", "PL": "pol|poland|polonia", "CA": "can|canada", "BR": "bra|brazil|brasil",
    "CL": "chl|chile", "CO": "col|colombia", "PE": "per|peru", "VE": "ven|venezuela", "UY": "ury|uruguay",
    "AU": "aus|australia", "JP": "jpn|japan|japon", "CN": "chn|china", "MA": "mar|morocco|marruecos",
    "AD": "and|andorra",
}
COUNTRY_ALIASES = {name: code for code, names in _COUNTRY_NAMES.items() for name in names.split("|")}

BOOL_TRUE = ("true", "yes", "y", "1", "si", "t")
BOOL_FALSE = ("false", "no", "n", "0", "f")
GENDERS = {
    **dict.fromkeys(("m", "male", "man", "hombre", "h", "masculino", "varon"), "M"),
    **dict.fromkeys(("f", "female", "woman", "mujer", "femenino"), "F"),
    **dict.fromkeys(("x", "other", "non-binary", "non binary", "nonbinary", "nb", "otro", "otra", "no binario"), "X"),
}

_EMAIL = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"
_URL_PREFIX = r"^(https?://)?([a-z0-9-]+\.)+[a-z]{2,}(:\d+)?/(in/|company/|user/)?"
_ISO_TS = r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?)?$"
_HAS_ZONE = r"\d:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"
_ZONE_LETTERS = re.compile(r"[VzOXxZ]")

# ---- helpers ----------------------------------------------------------------------------------------------


def _col(col: Column | str) -> Column:
    return F.col(col) if isinstance(col, str) else col


def _strip(col: Column | str) -> Column:
    """String value with leading/trailing Unicode whitespace (incl. NBSP, tabs) removed."""
    return F.regexp_replace(_col(col).cast("string"), r"(?U)^\s+|\s+$", "")


def _squash(col: Column | str) -> Column:
    """Stripped string with every inner whitespace run collapsed to one space; "" -> NULL."""
    return F.nullif(F.regexp_replace(_strip(col), r"(?U)\s+", " "), F.lit(""))


def _key(col: Column | str) -> Column:
    """Lookup key: accent-folded, lowercase, hyphens/underscores as spaces, other non-letters dropped."""
    s = F.lower(fold_accents(_strip(col)))
    s = F.regexp_replace(F.regexp_replace(s, r"(?U)[\s_\-‐‑–—]+", " "), r"[^\p{L}\p{N} ]", "")
    return F.trim(F.regexp_replace(s, " +", " "))


def _lookup(mapping: dict[str, str], key: Column) -> Column:
    """mapping[key] as a literal map lookup; NULL for a missing or NULL key."""
    items = tuple(sorted(mapping.items()))
    literal = literal_once(("map", items), lambda: F.create_map(*[F.lit(x) for kv in items for x in kv]))
    return F.try_element_at(literal, key)


def _one_of(values, key: Column) -> Column:
    """key is one of `values` (a literal array, built once per Spark application); NULL for a NULL key."""
    items = tuple(sorted(values))
    return F.array_contains(literal_once(("array", items), lambda: F.array(*map(F.lit, items))), key)


# ---- identity attributes ----------------------------------------------------------------------------------


def normalize_email(col: Column | str, gmail_rules: bool = True, strip_plus_tags: bool = True) -> Column:
    """Email -> lowercase canonical address (googlemail->gmail, gmail dots and +tags dropped), NULL if invalid."""
    s = F.lower(_strip(col))
    local, domain = F.substring_index(s, "@", 1), F.substring_index(s, "@", -1)
    domain = F.when(domain == "googlemail.com", F.lit("gmail.com")).otherwise(domain)
    if strip_plus_tags:
        local = F.regexp_replace(local, r"\+.*$", "")
    if gmail_rules:
        local = F.when(domain == "gmail.com", F.regexp_replace(local, r"\.", "")).otherwise(local)
    return F.when(s.rlike(_EMAIL) & (local != ""), F.concat(local, F.lit("@"), domain))


def fold_accents(col: Column | str) -> Column:
    """Replace accented Latin letters (U+00C0..U+024F) by their ASCII base letter, natively with translate."""
    return F.translate(_col(col).cast("string"), ACCENTED, UNACCENTED)


def match_name(col: Column | str) -> Column:
    """Name for matching: accent-folded, lowercase, letters and single spaces only (hyphen -> space); "" -> NULL."""
    s = F.lower(fold_accents(_strip(col)))
    s = F.regexp_replace(F.regexp_replace(s, r"(?U)[\s\-‐‑–—]+", " "), r"[^\p{L} ]", "")
    return F.nullif(F.trim(F.regexp_replace(s, " +", " ")), F.lit(""))


def display_name(col: Column | str) -> Column:
    """Name for display: trimmed, whitespace collapsed, accents kept; initcap when all upper or all lower case."""
    s = _squash(col)
    return F.when((s == F.upper(s)) | (s == F.lower(s)), F.initcap(s)).otherwise(s)


# "MUÑOZ GARCÍA María José": surname(s) written in capitals first (forms, ID cards), then the given name(s)
_SURNAME_FIRST = r"^((?:\p{Lu}[\p{Lu}'’-]+ )+)(\p{Lu}\p{Ll}.*)$"


def split_full_name(col: Column | str) -> tuple[Column, Column]:
    """Full name -> (first, last): "First Last Names", "Last Names, First" or "LAST NAMES First" (surnames in
    capitals before a capitalised given name); a single token -> (token, NULL)."""
    s = _squash(col)
    comma = s.contains(",")
    caps_first = s.rlike(_SURNAME_FIRST)
    first = (F.when(comma, F.regexp_extract(s, r"^[^,]*,(.*)$", 1))
             .when(caps_first, F.regexp_extract(s, _SURNAME_FIRST, 2)).otherwise(F.substring_index(s, " ", 1)))
    last = (F.when(comma, F.substring_index(s, ",", 1))
            .when(caps_first, F.regexp_extract(s, _SURNAME_FIRST, 1)).otherwise(F.regexp_extract(s, r"^\S+ (.*)$", 1)))
    return _squash(F.regexp_replace(first, ",", " ")), _squash(F.regexp_replace(last, ",", " "))


def normalize_handle(col: Column | str) -> Column:
    """Social handle -> lowercase bare handle (URL prefix, query string, trailing slash and leading @ removed)."""
    s = F.regexp_replace(F.lower(_strip(col)), _URL_PREFIX, "")
    s = F.regexp_replace(F.regexp_replace(s, r"[?#].*$", ""), r"/+$", "")
    return F.nullif(F.regexp_replace(s, r"^@+", ""), F.lit(""))


def normalize_postal_code(col: Column | str) -> Column:
    """Postal code -> trimmed, uppercase, inner whitespace collapsed to one space; "" -> NULL."""
    return F.upper(_squash(col))


# ---- reference codes --------------------------------------------------------------------------------------


def normalize_currency(col: Column | str) -> Column:
    """Currency code or symbol (€ £ $) -> ISO-4217 code from ISO_CURRENCIES, else NULL."""
    s = F.upper(_strip(col))
    code = F.coalesce(_lookup(CURRENCY_SYMBOLS, s), s)
    return F.when(_one_of(ISO_CURRENCIES, code), code)


def normalize_country(col: Column | str) -> Column:
    """Country code (any case) or common English/Spanish name -> ISO-3166 alpha-2, else NULL."""
    key = _key(col)
    code = F.upper(key)
    return F.when(_one_of(ISO_COUNTRIES, code), code).otherwise(_lookup(COUNTRY_ALIASES, key))


def parse_bool(col: Column | str) -> Column:
    """true/yes/y/1/si/sí/t -> true, false/no/n/0/f -> false, anything else NULL."""
    key = F.lower(fold_accents(_strip(col)))
    return F.when(_one_of(BOOL_TRUE, key), F.lit(True)).when(_one_of(BOOL_FALSE, key), F.lit(False))


def normalize_gender(col: Column | str) -> Column:
    """Gender in English/Spanish -> "M", "F" or "X", else NULL."""
    key = F.lower(fold_accents(F.regexp_replace(_strip(col), r"(?U)\s+", " ")))
    return _lookup(GENDERS, key)


# ---- numbers and time -------------------------------------------------------------------------------------


def to_amount(col: Column | str) -> Column:
    """Money string -> double: "1234.50", "1.234,50", "1,234.50", "1234,50", "€12.30", "12,30 EUR", "1.5E7"; NULL
    for anything else, NaN and a number too large for a double."""
    # A lone separator is decimal ("1,5" -> 1.5, "1.234" -> 1.234); a repeated one groups thousands.
    s = F.regexp_replace(_strip(col), r"(?U)[\s'’]", "")
    sign = F.concat(F.regexp_extract(s, _AMOUNT, 1), F.regexp_extract(s, _AMOUNT, 2))
    num = F.regexp_extract(s, _AMOUNT, 3)
    plain = (
        F.when(num.rlike(r"^\d+(\.\d+)?$"), num)
        .when(num.rlike(r"^\d+,\d+$"), F.translate(num, ",", "."))
        .when(num.rlike(r"^\d{1,3}(,\d{3})+(\.\d+)?$"), F.translate(num, ",", ""))
        .when(num.rlike(r"^\d{1,3}(\.\d{3})+(,\d+)?$"), F.translate(num, ",.", "."))
    )
    value = F.when(F.length(sign) <= 1, F.concat(sign, plain).try_cast("double"))
    # scientific notation ("1.0E7": how Spark writes a large double as text, e.g. a Parquet double read as a string)
    value = F.coalesce(value, F.when(s.rlike(_SCIENTIFIC), s.try_cast("double")))
    # a number too large for a double reads as Infinity: not an amount anyone paid
    return F.when(F.abs(value) < F.lit(float("inf")), value)


def _check_tz(tz: str) -> str:
    """tz, or ValueError: "UTC", "Z", "+HH:MM" or an IANA zone Spark reads (the rules load_sources applies)."""
    return check_timezone(tz)


def _unquoted(fmt: str) -> str:
    return re.sub(r"'[^']*'", "", fmt)


def to_utc_timestamp(col: Column | str, fmt: str = "iso", tz: str = "UTC") -> Column:
    """String -> UTC timestamp: ISO-8601 (Z / offset / none -> in tz), or a Spark pattern read as local time in tz."""
    tz = _check_tz(tz)
    s = _strip(col)
    if fmt != "iso":
        if _ZONE_LETTERS.search(_unquoted(fmt)):
            return F.try_to_timestamp(s, F.lit(fmt))
        return F.try_to_timestamp(F.concat(s, F.lit(f" {tz}")), F.lit(f"{fmt} VV"))
    iso = F.when(s.rlike(_ISO_TS), s)
    with_zone = iso.try_cast("timestamp")
    # No offset: the wall-clock reading (NTZ, session-independent) re-read as a time in tz.
    wall = F.date_format(iso.try_cast("timestamp_ntz"), "yyyy-MM-dd HH:mm:ss.SSSSSS")
    local = F.concat(wall, F.lit(f" {tz}")).try_cast("timestamp")
    return F.when(iso.rlike(_HAS_ZONE), with_zone).otherwise(local)


def to_date_safe(col: Column | str, fmt: str = "iso") -> Column:
    """String -> date; "iso" accepts yyyy-MM-dd (optionally followed by a time), d/M/yyyy and yyyyMMdd; else NULL."""
    s = _strip(col)
    if fmt != "iso":
        return F.try_to_date(s, fmt)
    return F.coalesce(
        F.when(s.rlike(r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}\S*)?$"), s.try_cast("date")),
        F.when(s.rlike(r"^\d{1,2}/\d{1,2}/\d{4}$"), F.try_to_date(s, "d/M/yyyy")),
        F.when(s.rlike(r"^\d{8}$"), F.try_to_date(s, "yyyyMMdd")),
    )
