"""Checks on configuration values that need no data and no Spark: time zones, timestamp patterns, reader
options, landing paths and phone regions; and what every one-line configuration error quotes with (`short`,
`did_you_mean`, `likely_typo`).

Each `*_problem` function returns None when the value is fine, else one line "<what is wrong>; <what to
do>" that the caller prefixes with the file and the key. The rules mirror Spark 4.1 (DateTimeFormatter-based
patterns, see https://spark.apache.org/docs/latest/sql-ref-datetime-pattern.html) and the way
cdp.ingest.landing reads files, so a mistake is reported when the file loads, not when data arrives.
Pure Python: importing this module must not import pyspark.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

PATTERN_DOCS = "https://spark.apache.org/docs/latest/sql-ref-datetime-pattern.html"
_SHORT_LIMIT = 60  # characters of a value quoted in an error message


def short(value: object, limit: int = _SHORT_LIMIT) -> str:
    """repr of a scalar, on one line and at most `limit` characters (long values end in '...')."""
    text = repr(value)
    if len(text) <= limit:
        return text
    quote = text[-1] if text[:1] in "'\"" else ""
    return text[:limit - 3 - len(quote)] + "..." + quote


def did_you_mean(word: str, choices, synonyms: dict[str, str] | None = None) -> str:
    """"did you mean 'x'?" for the closest choice (same letters in another case first), or ""."""
    lowered = {c.lower(): c for c in choices}
    match = lowered.get(word.lower()) or (synonyms or {}).get(word.lower())
    if not match:
        close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
        match = close[0] if close else None
    return f"did you mean {match!r}?" if match else ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), for short names."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def likely_typo(word: str, choices) -> str | None:
    """The choice `word` is most likely a misspelling of (another case or separator, or one or two edits for a
    long enough name), or None: a name far from every choice is a different name, not a typo."""
    def folded(w: str) -> str:
        return w.lower().replace("-", "_").replace(" ", "_")

    if word in choices:
        return None
    budget = 1 if len(word) <= 5 else 2
    scored = sorted((0 if folded(c) == folded(word) else edit_distance(folded(word), folded(c)), c) for c in choices)
    return scored[0][1] if scored and scored[0][0] <= budget else None


# ---------------------------------------------------------------- time zones

# IANA names Spark (java.time.ZoneId) does not read although tzdata lists them (checked on Java 17):
# the legacy three-letter ones and the placeholder "Factory". The value is what to write instead.
_UNREADABLE_ZONES = {"EST": "-05:00", "MST": "-07:00", "HST": "-10:00", "ROC": "Asia/Taipei", "Factory": "UTC"}
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


@cache
def zone_names() -> frozenset[str]:
    """IANA zone names from the tzdata package (a dependency, so the same on every machine); the
    system's zoneinfo database only when tzdata is missing."""
    try:
        text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
        names = frozenset(text.split())
    except (ModuleNotFoundError, FileNotFoundError):
        names = frozenset(available_timezones())
    return names - set(_UNREADABLE_ZONES)


def timezone_problem(tz: str) -> str | None:
    """None for "UTC", "Z", a fixed offset "+HH:MM" / "-HH:MM" (up to 18:00) or an IANA zone Spark reads."""
    if tz in ("UTC", "Z"):
        return None
    if tz[:1] in ("+", "-"):
        m = _OFFSET.fullmatch(tz)
        if not m:
            return (f"{short(tz)} is not an offset Spark reads in timestamp patterns; "
                    "write it as +HH:MM or -HH:MM, e.g. +02:00")
        hours, minutes = int(m.group(2)), int(m.group(3))
        if minutes > 59 or hours > 18 or (hours == 18 and minutes):
            return f"{short(tz)} is out of range; offsets go from -18:00 to +18:00"
        return None
    if tz in _UNREADABLE_ZONES:
        return f"{short(tz)} is a legacy name Spark does not read as a time zone; use {_UNREADABLE_ZONES[tz]}"
    names = zone_names()
    if not names:
        return f"cannot check time zone {short(tz)}: no time-zone database; install the tzdata package"
    if tz in names:
        try:
            ZoneInfo(tz)
            return None
        except (ValueError, OSError):  # a corrupt or unreadable zone file
            pass
    hint = did_you_mean(tz, sorted(names))
    accepted = "an IANA name such as Europe/Madrid, UTC, or an offset such as +02:00"
    if hint:
        return f"{short(tz)} is not a known time zone; {hint} (give {accepted})"
    return f"{short(tz)} is not a known time zone; use {accepted}"


def check_timezone(tz: str) -> str:
    """tz itself, or ValueError with the problem (for code that builds Spark expressions)."""
    problem = timezone_problem(tz)
    if problem:
        raise ValueError(f"unknown time zone {tz!r}: {problem}")
    return tz


# ---------------------------------------------------------------- timestamp patterns

# Letters Spark 4 accepts when *parsing*, with the run lengths java.time and Spark allow for each.
_LETTER_COUNTS: dict[str, tuple[int, ...]] = {
    "G": (1, 2, 3, 4), "y": (1, 2, 3, 4, 5, 6), "D": (1, 2, 3), "M": (1, 2, 3, 4), "L": (1, 2, 3, 4),
    "d": (1, 2), "a": (1,), "h": (1, 2), "K": (1, 2), "k": (1, 2), "H": (1, 2), "m": (1, 2), "s": (1, 2),
    "S": tuple(range(1, 10)), "V": (2,), "z": (1, 2, 3, 4), "O": (1, 4), "X": (1, 2, 3, 4, 5),
    "x": (1, 2, 3, 4, 5), "Z": (1, 2, 3, 4, 5),
}
# Spark formats these but refuses them in a pattern used to parse (SPARK-31892 and friends).
_FORMAT_ONLY = {"E": "day-of-week", "F": "aligned day-of-week-in-month", "Q": "quarter", "q": "quarter"}
# Week-based fields: rejected by Spark 3+ (INCONSISTENT_BEHAVIOR_CROSS_VERSION.DATETIME_WEEK_BASED_PATTERN).
_WEEK_BASED = {"Y": "week-based year; use 'y' for the year", "w": "week-of-year", "W": "week-of-month",
               "u": "day-of-week number in Spark 2, now unsupported; use 'y' for the year",
               "e": "localized day-of-week", "c": "localized day-of-week"}


def timestamp_format_problem(fmt: str) -> str | None:
    """None for "iso" or a pattern Spark 4 can parse timestamps with; else what is wrong and what to do."""
    if fmt == "iso":
        return None
    if not fmt.strip():
        return "is empty; use \"iso\" or a Spark pattern such as \"dd/MM/yyyy HH:mm:ss\""
    letters: list[str] = []
    i, depth, n = 0, 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c == "'":
            if fmt[i + 1:i + 2] == "'":  # '' is a literal quote
                i += 2
                continue
            end = _closing_quote(fmt, i + 1)
            if end < 0:
                return f"{short(fmt)} opens quoted text with ' but never closes it; close it, e.g. 'T'"
            i = end + 1
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                return f"{short(fmt)} closes an optional section with ] that was never opened; add the [ or remove the ]"
            depth -= 1
        elif c in "{}#":
            return f"{short(fmt)} uses {c!r}, which Spark reserves; quote it as literal text, e.g. '{c}'"
        elif c.isascii() and c.isalpha():
            run = len(fmt[i:]) - len(fmt[i:].lstrip(c))
            problem = _letter_problem(c, run, fmt)
            if problem:
                return problem
            letters.append(c)
            i += run
            continue
        i += 1
    return _mixup_problem(fmt, set(letters))


def _closing_quote(fmt: str, start: int) -> int:
    """Index of the quote that ends quoted text starting at `start` ('' inside it is an escaped quote), or -1."""
    while True:
        k = fmt.find("'", start)
        if k < 0 or fmt[k + 1:k + 2] != "'":
            return k
        start = k + 2


def _letter_problem(c: str, run: int, fmt: str) -> str | None:
    where = f"{short(fmt)} uses {c * run!r}"
    if c in _WEEK_BASED:
        return f"{where} ({_WEEK_BASED[c]}), which Spark 3+ does not support; see {PATTERN_DOCS}"
    if c in _FORMAT_ONLY:
        return (f"{where} ({_FORMAT_ONLY[c]}), which Spark can print but not parse; remove it "
                "(or quote the text it stands for)")
    if c not in _LETTER_COUNTS:
        return f"{where}, and {c!r} is not a Spark datetime pattern letter; quote literal text as '{c}' or see {PATTERN_DOCS}"
    allowed = _LETTER_COUNTS[c]
    if run not in allowed:
        counts = " or ".join(str(k) for k in allowed) if len(allowed) <= 3 else f"{allowed[0]} to {allowed[-1]}"
        return f"{where}; Spark accepts {c!r} repeated {counts} time(s) when parsing"
    return None


def _mixup_problem(fmt: str, letters: set[str]) -> str | None:
    """Valid letters that almost certainly mean something else: every row would parse to NULL or a wrong time."""
    month = bool(letters & {"M", "L"})
    if "D" in letters and month:
        return f"{short(fmt)} uses 'D' (day-of-year) together with a month; for the day of the month use 'd'"
    if "m" in letters and not month and {"y", "d"} <= letters:
        return f"{short(fmt)} uses 'm' (minute) but no month; for the month use 'M'"
    if letters & {"h", "K"} and "a" not in letters:
        return f"{short(fmt)} uses 'h'/'K' (12-hour clock) without 'a' (am/pm); for 0-23 hours use 'H'"
    return None


# ---------------------------------------------------------------- reader options

_BOOL = ("true", "false")
_ONE_CHAR = "a single character"
# CSV options cdp.ingest.landing passes to Spark's reader (columns are always read as text, so only
# options about splitting lines and fields matter). name -> allowed values (None: any), or a check.
CSV_OPTIONS: dict[str, tuple[str, ...] | str | None] = {
    "sep": _ONE_CHAR, "header": ("true",), "quote": "at most one character", "escape": "at most one character",
    "charToEscapeQuoteEscaping": "at most one character", "comment": "at most one character",
    "encoding": None, "charset": None, "nullValue": None, "emptyValue": None, "multiLine": _BOOL,
    "ignoreLeadingWhiteSpace": _BOOL, "ignoreTrailingWhiteSpace": _BOOL, "lineSep": _ONE_CHAR,
    "maxColumns": "a whole number", "maxCharsPerColumn": "a whole number",
    "unescapedQuoteHandling": ("STOP_AT_CLOSING_QUOTE", "BACK_TO_DELIMITER", "STOP_AT_DELIMITER", "SKIP_VALUE",
                               "RAISE_ERROR"),
}
# Spark CSV options that exist but would be ignored, overridden or wrong here, with what to do instead.
CSV_NOT_APPLIED = {
    "mode": "the pipeline sets it (PERMISSIVE: malformed rows go to quarantine); remove it",
    "columnNameOfCorruptRecord": "the pipeline reserves it for the quarantine; remove it",
    "delimiter": "the header is split on 'sep'; write sep instead",
    "dateFormat": "columns are read as text and dates parse as yyyy-MM-dd, d/M/yyyy or yyyyMMdd; remove it",
    "timestampFormat": "columns are read as text; set the top-level key timestamp_format instead",
    "timestampNTZFormat": "columns are read as text; set the top-level key timestamp_format instead",
    "locale": "columns are read as text, so it changes nothing; remove it",
    "inferSchema": "columns are read as text and typed from the 'columns' list; remove it",
    "enforceSchema": "columns are matched by their header names; remove it",
    "samplingRatio": "no schema is inferred; remove it",
    "preferDate": "no schema is inferred; remove it",
    "enableDateTimeParsingFallback": "columns are read as text; remove it",
    "nanValue": "columns are read as text and typed from the 'columns' list; remove it",
    "positiveInf": "columns are read as text and typed from the 'columns' list; remove it",
    "negativeInf": "columns are read as text and typed from the 'columns' list; remove it",
}
# Names from other CSV tools, lowercased -> the Spark option.
_CSV_SYNONYMS = {"separator": "sep", "delim": "sep", "fieldseparator": "sep", "headers": "header",
                 "quotechar": "quote", "escapechar": "escape", "newline": "lineSep", "lineseparator": "lineSep",
                 "null": "nullValue", "na": "nullValue"}
_NO_OPTIONS = {
    "json": "JSON-lines files are read as UTF-8 text, one object per line, with fixed settings",
    "parquet": "Parquet files are read with their own schema and fixed settings",
}


def reader_option_problem(fmt: str, key: str, value: str) -> str | None:
    """One reader option of a source: None when it is one the pipeline applies and its value fits."""
    if fmt in _NO_OPTIONS:
        return f"is not applied: {_NO_OPTIONS[fmt]}; remove it"
    if key in CSV_NOT_APPLIED:
        return f"is not applied: {CSV_NOT_APPLIED[key]}"
    if key not in CSV_OPTIONS:
        hint = did_you_mean(key, [*CSV_OPTIONS, *CSV_NOT_APPLIED], _CSV_SYNONYMS)
        return (f"is not a CSV reader option; {hint + ' ' if hint else ''}"
                f"known: {', '.join(CSV_OPTIONS)}")
    rule = CSV_OPTIONS[key]
    if rule is None:
        return None
    if isinstance(rule, tuple):
        return None if value in rule else f"is {short(value)}; use {' or '.join(repr(v) for v in rule)}"
    if rule == "a whole number":
        return None if re.fullmatch(r"-?\d+", value) else f"is {short(value)}; give {rule}"
    if rule == _ONE_CHAR and len(value) != 1:
        return f"is {short(value)}; give {rule} (write a tab as \"\\t\" in double quotes)"
    if rule == "at most one character" and len(value) > 1:
        return f"is {short(value)}; give {rule}"
    return None


# ---------------------------------------------------------------- paths and phone regions


def landing_path_problem(path: str) -> str | None:
    """None for a non-empty glob relative to paths.landing that stays inside it."""
    example = "give a glob relative to paths.landing, e.g. pos/sales_*.csv"
    if not path.strip():
        return f"is empty; {example}"
    if "://" in path or path.startswith("dbfs:"):
        return f"is a URI ({short(path)}); set paths.landing to the location and {example}"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        return f"is an absolute path ({short(path)}); {example}"
    if ".." in re.split(r"[\\/]", path):
        return f"climbs out of the landing folder with '..' ({short(path)}); {example}"
    if path.endswith(("/", "\\")):
        return f"ends with '/', so it matches a folder, not files ({short(path)}); add a file pattern, e.g. pos/*.csv"
    return None


def phone_region_problem(region: str) -> str | None:
    """None when libphonenumber knows the region code (e.g. ES, GB, US)."""
    import phonenumbers  # pure Python, imported only when a region is checked

    if region in phonenumbers.SUPPORTED_REGIONS:
        return None
    return "not a phone region libphonenumber supports; use an ISO-3166 alpha-2 country code such as ES, GB or US"
