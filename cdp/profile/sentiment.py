"""Sentiment of customers' own words (surveys, suggestions, reviews, posts): a lexicon approach in Spanish and
English with negation, built from Spark built-ins only (no UDF, no explode, no model download)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp.config.lexicon import merged_lexicon
from cdp.config.profile import Sentiment
from cdp.silver.standardize import fold_accents

CLAUSE_END = "."  # the token punctuation becomes: negation does not reach past the end of a clause
# Values outside [-1, 1] that tag a word in the lookup table, so one lookup per word says whether it scores,
# negates or ends a clause.
NEGATES, ENDS_CLAUSE = 9.0, -9.0


def words(text: Column | str) -> Column:
    """The text as an array of lower-case, accent-folded words, each clause's punctuation kept as a '.' token."""
    s = F.lower(fold_accents(text))
    s = F.regexp_replace(s, r"['’`´]", "")                       # don't -> dont, won't -> wont
    s = F.regexp_replace(s, r"[.,;:!?¡¿()\[\]…]+", f" {CLAUSE_END} ")
    s = F.regexp_replace(s, r"[^\p{L}.]+", " ")                    # digits, emoji, symbols: word breaks
    return F.split(F.trim(s), " +")


def lookup_table(config: Sentiment) -> dict[str, dict[str, float]]:
    """{first letter: {word: score, or NEGATES / ENDS_CLAUSE}} of the lexicons, negators and clause end."""
    # Spark finds a map key by scanning the keys: split by first letter, a lookup scans dozens, not hundreds.
    entries = {**merged_lexicon(config.lexicon_paths()), **dict.fromkeys(config.negators, NEGATES),
               CLAUSE_END: ENDS_CLAUSE}
    table: dict[str, dict[str, float]] = {}
    for word, value in sorted(entries.items()):
        table.setdefault(word[0], {})[word] = value
    return table


def _map_sql(mapping: dict) -> str:
    """A literal map as SQL text: one call to the JVM however large the lexicon (a lit() per entry is hundreds)."""
    def value(v) -> str:
        return _map_sql(v) if isinstance(v, dict) else f"{float(v)!r}D"
    return "map(" + ", ".join(f"'{k}', {value(v)}" for k, v in mapping.items()) + ")"


def sentiment_score(text: Column | str, config: Sentiment | None = None) -> Column:
    """Mean lexicon score of the text's words in [-1, 1], negated words flipped; NULL when no word is scored.

    config: lexicons, negators and negation window (default: the shipped en and es lexicons)."""
    config = config or Sentiment()
    table = F.expr(_map_sql(lookup_table(config)))  # keys are letters or '.', so they need no escaping
    values = F.transform(words(text), lambda w: F.try_element_at(F.try_element_at(table, F.substring(w, 1, 1)), w))
    window = F.lit(config.negation_window)

    def step(acc: Column, value: Column) -> Column:
        # One pass over the word values carries (words still negated, sum of scores, words scored).
        is_score = value.between(-1, 1)
        signed = F.when(acc["negated_for"] > 0, -value).otherwise(value)
        negated_for = (F.when(value == NEGATES, window).when(value == ENDS_CLAUSE, F.lit(0))
                       .otherwise(F.greatest(acc["negated_for"] - 1, F.lit(0))))
        return F.struct(negated_for.alias("negated_for"),
                        (acc["total"] + F.when(is_score, signed).otherwise(0.0)).alias("total"),
                        (acc["scored"] + F.when(is_score, 1).otherwise(0)).alias("scored"))

    start = F.struct(F.lit(0).alias("negated_for"), F.lit(0.0).alias("total"), F.lit(0).alias("scored"))
    # a NULL text splits into a NULL array, so its score is NULL too
    return F.aggregate(values, start, step, lambda acc: F.when(acc["scored"] > 0, acc["total"] / acc["scored"]))
