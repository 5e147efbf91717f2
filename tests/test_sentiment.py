"""Sentiment: the lexicon files, the word scoring on a tiny lexicon (mean, negation window, clause end) and the
shipped English and Spanish lexicons on customer sentences."""

import pytest
from pyspark.sql import functions as F

from cdp.config.lexicon import merged_lexicon, read_lexicon
from cdp.config.profile import Sentiment
from cdp.errors import ConfigError
from cdp.profile.sentiment import sentiment_score

TINY = "# a test lexicon\ngood\t0.5\nbad\t-0.5\ngreat\t1\nbueno\t0.5\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Sentiment:
    path = tmp_path_factory.mktemp("lexicon") / "tiny.tsv"
    path.write_text(TINY, encoding="utf-8")
    return Sentiment(lexicons=[str(path)], negators=["not", "no", "nunca"], negation_window=2)


def scores(spark, texts: list[str | None], config: Sentiment | None = None) -> list[float | None]:
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "i int, text string")
    rows = df.select("i", F.round(sentiment_score("text", config), 4).alias("s")).orderBy("i").collect()
    return [r.s for r in rows]


def test_tiny_lexicon_scores(spark, tiny):
    texts = [
        "Good good BAD",          # (0.5 + 0.5 - 0.5) / 3
        "not good",               # negated: -0.5
        "no es bueno",            # 'bueno' is 2 words after 'no': still negated, -0.5
        "not very much good",     # 'good' 3 words after 'not', window 2: 0.5
        "not! good",              # the clause ends before 'good': 0.5
        "nunca, great",           # 1.0
        "Don't know",             # no lexicon word: NULL
        None,                     # NULL
        "great 10/10 :) good",    # digits and symbols are word breaks: (1 + 0.5) / 2
    ]
    assert scores(spark, texts, tiny) == [0.1667, -0.5, -0.5, 0.5, 0.5, 1.0, None, None, 0.75]


# The shipped lexicons: the sign of real customer sentences (scores are means of word scores in [-1, 1]).
SENTENCES = [
    ("Excellent service, the staff were lovely.", 1),
    ("Terrible service, my order arrived late and damaged.", -1),
    ("The delivery was not good at all.", -1),
    ("Not bad, I would recommend it.", 1),
    ("I won't recommend them to anyone.", -1),
    ("Atención excelente, muy contenta con la compra.", 1),
    ("Pésimo servicio, el pedido llegó tarde y roto.", -1),
    ("El producto no es bueno.", -1),
    ("No está mal, lo recomiendo.", 1),
    ("Nunca me atendieron bien.", -1),
]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_shipped_lexicon_sizes(lang):
    from cdp.config.profile import LEXICON_DIR

    assert len(read_lexicon(LEXICON_DIR / f"{lang}.tsv")) >= 300


@pytest.fixture(scope="module")
def shipped_scores(spark) -> dict[str, float | None]:
    """Every sentence scored with the shipped lexicons in one Spark job."""
    texts = [t for t, _ in SENTENCES]
    return dict(zip(texts, scores(spark, texts), strict=True))


@pytest.mark.parametrize("text, sign", SENTENCES, ids=[
    "en_positive", "en_negative", "en_negated_positive", "en_negated_negative", "en_wont_recommend",
    "es_positive", "es_negative", "es_negated_positive", "es_negated_negative", "es_nunca_bien"])
def test_shipped_lexicons_sign(shipped_scores, text, sign):
    score = shipped_scores[text]
    assert (None if score is None else (score > 0) - (score < 0)) == sign, f"{text!r} scored {score}"


def test_bad_lexicon_line_names_file_and_line(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("good\t0.5\nbad\t-7\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mine.tsv line 2: score '-7' of 'bad' is not a number in \[-1, 1\]"):
        read_lexicon(path)


def test_a_word_in_two_lexicons_gets_the_mean_score(tmp_path):
    (tmp_path / "a.tsv").write_text("fatal\t-0.8\nbien\t0.4\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("Fatal\t-0.4\n", encoding="utf-8")
    assert merged_lexicon([tmp_path / "a.tsv", tmp_path / "b.tsv"]) == {"bien": 0.4, "fatal": pytest.approx(-0.6)}
