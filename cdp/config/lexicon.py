"""Sentiment lexicons: word<TAB>score files (shipped in cdp/profile/lexicons, or a user's own), read and merged in
plain Python so conf checks need no Spark."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from cdp.errors import ConfigError


def fold_word(word: str) -> str:
    """Lower case without accents (jamás -> jamas, ñ -> n): how sentiment_score sees the text's words."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=16)
def read_lexicon(path: Path) -> dict[str, float]:
    """One lexicon file as {folded word: score}; ConfigError naming the file and line on a bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the lexicon ({exc.strerror or exc})") from None
    words: dict[str, float] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, raw = line.strip().partition("\t")
        where = f"{path} line {n}"
        if not sep:
            raise ConfigError(f"{where}: expected word<TAB>score")
        try:
            score = float(raw)
        except ValueError:
            score = float("nan")
        if not -1 <= score <= 1:
            raise ConfigError(f"{where}: score {raw!r} of {word!r} is not a number in [-1, 1]")
        key = fold_word(word)
        if not key.isalpha():
            raise ConfigError(f"{where}: {word!r} is not one word of letters (the text is split on everything else)")
        if key in words:
            raise ConfigError(f"{where}: {word!r} is listed twice; keep one score")
        words[key] = score
    if not words:
        raise ConfigError(f"{path}: the lexicon has no words")
    return words


def merged_lexicon(paths: list[str] | list[Path]) -> dict[str, float]:
    """The words of every lexicon; a word spelled the same in two languages gets the mean of its scores."""
    scores: dict[str, list[float]] = {}
    for p in paths:
        for word, score in read_lexicon(Path(p)).items():
            scores.setdefault(word, []).append(score)
    return {w: sum(s) / len(s) for w, s in sorted(scores.items())}
