"""Standardization Column functions on real Spark (ANSI on, session time zone UTC): exact values, NULL for junk,
never an exception."""

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from cdp.silver import standardize as S
from cdp.silver.phones import to_e164


def apply(spark, fn, cases: dict, *args, **kwargs) -> dict:
    """{input: fn(input)} computed by Spark on a one-column string DataFrame."""
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    rows = df.select("v", fn(F.col("v"), *args, **kwargs).alias("out")).collect()
    return {r["v"]: r["out"] for r in rows}


def check(spark, fn, cases: dict, *args, **kwargs) -> None:
    assert apply(spark, fn, cases, *args, **kwargs) == cases


def test_normalize_email(spark):
    check(spark, S.normalize_email, {
        "J.O.S.E+promo@GMail.com ": "jose@gmail.com",
        "ana.garcia@googlemail.com": "anagarcia@gmail.com",
        "\tLuis.Perez+news@Example.CO.UK\u00a0": "luis.perez@example.co.uk",
        "a.b@hotmail.es": "a.b@hotmail.es",
        "N/A": None, "unknown": None, "-": None, "": None, "   ": None, None: None,
        "a@@b.com": None, "a@b@c.com": None, "@gmail.com": None, "+tag@gmail.com": None, "...@gmail.com": None,
        "jose@localhost": None, "jose@gmail.": None, "jose@.com": None, "jo se@gmail.com": None,
    })


def test_normalize_email_rules_off(spark):
    cases = {"J.O.S.E+promo@GMail.com": "j.o.s.e+promo@gmail.com", "x.y@googlemail.com": "x.y@gmail.com"}
    check(spark, S.normalize_email, cases, gmail_rules=False, strip_plus_tags=False)
    check(spark, S.normalize_email, {"J.O.S.E+promo@GMail.com": "jose+promo@gmail.com"}, strip_plus_tags=False)
    check(spark, S.normalize_email, {"J.O.S.E+promo@GMail.com": "j.o.s.e@gmail.com"}, gmail_rules=False)


def test_normalize_phone_spanish_formats(spark):
    es = {v: "+34612345678" for v in ("+34 612 345 678", "0034612345678", "612-345-678", "612345678",
                                      "(612) 345 678", "612 34 56 78", "+34612345678")}
    check(spark, S.normalize_phone, {**es, "911234567": "+34911234567", "000000000": None, "999999999": None,
                                     "N/A": None, "": None, "-": None, "unknown": None, "0": None,
                                     "123456789": None, "61234": None, None: None})


def test_normalize_phone_gb(spark):
    # 07700 900xxx is Ofcom's drama range: libphonenumber calls it invalid, so only the lenient mode keeps it.
    cases = {  # value: (strict, lenient)
        "+44 7911 123456": ("+447911123456",) * 2, "07911 123456": ("+447911123456",) * 2,
        "0044 7911 123456": ("+447911123456",) * 2, "+44 (0)7911 123456": ("+447911123456",) * 2,
        "+34 612 345 678": ("+34612345678",) * 2, "612345678": (None, "+44612345678"),  # merely possible
        "+44 7700 900123": (None, "+447700900123"), "07700 900123": (None, "+447700900123"),
        "000000000": (None, None), "999999999": (None, None), "0123456789": (None, None), "N/A": (None, None),
        "": (None, None), None: (None, None),
    }
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    rows = df.select("v", S.normalize_phone("v", "GB"), S.normalize_phone("v", "GB", strict=False)).collect()
    assert {r[0]: (r[1], r[2]) for r in rows} == cases


def test_normalize_phone_region_column(spark):
    df = spark.createDataFrame([
        ("07911 123456", "GB"), ("07911 123456", "gb "), ("612345678", "ES"), ("612345678", None),
        ("612345678", "XX"), ("(212) 555-0100", "US"), ("+34 612 345 678", "US"), ("N/A", "GB"), (None, "ES"),
    ], "phone string, country string")
    out = [r[0] for r in df.select(S.normalize_phone(F.col("phone"), F.col("country"), "ES")).collect()]
    assert out == ["+447911123456", "+447911123456", "+34612345678", "+34612345678", "+34612345678",
                   "+12125550100", "+34612345678", None, None]


def test_phone_python_core_and_bad_region():
    assert to_e164("612345678", None) == "+34612345678"
    assert to_e164(float("nan"), "ES") is None
    assert to_e164("x" * 1000, "ES") is None
    with pytest.raises(ValueError):
        S.normalize_phone(F.col("p"), "XX")


def test_fold_accents(spark):
    check(spark, S.fold_accents, {"José Muñoz Núñez Ibáñez": "Jose Munoz Nunez Ibanez",
                                  "ÀÉÎÕÜ çÇ ñÑ Łódź Øresund Đorđe": "AEIOU cC nN Lodz Oresund Dorde",
                                  "Straße Æsir 東京": "Straße Æsir 東京", "": "", None: None})


def test_match_name(spark):
    check(spark, S.match_name, {"  María-José  O'Neill ": "maria jose oneill", "GARCÍA\tLÓPEZ": "garcia lopez",
                                "Jean-Luc  d'Artagnan Jr.": "jean luc dartagnan jr", "José 2": "jose",
                                "--": None, "'": None, "123": None, "": None, None: None})


def test_display_name(spark):
    check(spark, S.display_name, {"  maría   josé ": "María José", "MUÑOZ GARCÍA": "Muñoz García",
                                  "McDonald": "McDonald", "de la Fuente": "de la Fuente", "\t": None, "": None,
                                  None: None})


def test_split_full_name(spark):
    df = spark.createDataFrame([(v,) for v in (
        "José Muñoz García", "Muñoz, José", "Muñoz García,  María José", "  Cher ", "O'Neill,", "", None,
        "MUÑOZ GARCÍA María José", "O'NEILL Seán", "JOSÉ MUÑOZ", "J Smith")], "v string")
    first, last = S.split_full_name(F.col("v"))
    assert [tuple(r) for r in df.select(first, last).collect()] == [
        ("José", "Muñoz García"), ("José", "Muñoz"), ("María José", "Muñoz García"), ("Cher", None),
        (None, "O'Neill"), (None, None), (None, None),
        ("María José", "MUÑOZ GARCÍA"), ("Seán", "O'NEILL"), ("JOSÉ", "MUÑOZ"), ("J", "Smith")]


def test_to_utc_timestamp_iso(spark):
    check(spark, S.to_utc_timestamp, {
        "2025-03-04T10:22:31+01:00": datetime(2025, 3, 4, 9, 22, 31),
        "2025-03-04T10:22:31Z": datetime(2025, 3, 4, 10, 22, 31),
        "2025-03-04 10:22:31 +0100": datetime(2025, 3, 4, 9, 22, 31),
        "2025-03-04T10:22:31.250-05:00": datetime(2025, 3, 4, 15, 22, 31, 250000),
        "2025-03-04T10:22:31": datetime(2025, 3, 4, 10, 22, 31),
        "2025-03-04 10:22:31": datetime(2025, 3, 4, 10, 22, 31),
        "2025-03-04": datetime(2025, 3, 4),
        " 2025-03-04T10:22 ": datetime(2025, 3, 4, 10, 22),
        "garbage": None, "2025": None, "2025-13-45 10:00:00": None, "2025-02-30": None, "04/03/2025": None,
        "": None, None: None,
    })


def test_to_utc_timestamp_local_zone(spark):
    check(spark, S.to_utc_timestamp, {
        "2025-07-01T10:30:00": datetime(2025, 7, 1, 8, 30),  # CEST, +02:00
        "2025-01-15 10:30:00": datetime(2025, 1, 15, 9, 30),  # CET, +01:00
        "2025-07-01": datetime(2025, 6, 30, 22, 0),
        "2025-07-01T10:30:00Z": datetime(2025, 7, 1, 10, 30),  # an explicit offset wins over tz
        "nope": None,
    }, "iso", "Europe/Madrid")


def test_to_utc_timestamp_pattern(spark):
    check(spark, S.to_utc_timestamp, {"01/07/2025 10:30": datetime(2025, 7, 1, 8, 30),
                                      "15/01/2025 10:30": datetime(2025, 1, 15, 9, 30),
                                      "31/02/2025 10:00": None, "2025-07-01 10:30": None, "garbage": None,
                                      None: None}, "dd/MM/yyyy HH:mm", "Europe/Madrid")
    check(spark, S.to_utc_timestamp, {"2025-07-01 10:30:05": datetime(2025, 7, 1, 10, 30, 5), "x": None},
          "yyyy-MM-dd HH:mm:ss")
    check(spark, S.to_utc_timestamp, {"2025-07-01 10:30 +0300": datetime(2025, 7, 1, 7, 30)},
          "yyyy-MM-dd HH:mm Z", "Europe/Madrid")
    check(spark, S.to_utc_timestamp, {"2025-07-01 10:30": datetime(2025, 7, 1, 9, 30)}, "yyyy-MM-dd HH:mm", "+01:00")
    with pytest.raises(ValueError):
        S.to_utc_timestamp(F.col("v"), "iso", "Mars/Olympus")


def test_to_date_safe(spark):
    check(spark, S.to_date_safe, {
        "2025-03-04": date(2025, 3, 4), "04/03/2025": date(2025, 3, 4), "4/3/2025": date(2025, 3, 4),
        "20250304": date(2025, 3, 4), "2025-03-04T10:22:31Z": date(2025, 3, 4), " 2025-03-04 ": date(2025, 3, 4),
        "2025-02-30": None, "31/02/2025": None, "20251399": None, "2025": None, "2025-03-04 junk": None,
        "garbage": None, "": None, None: None,
    })
    check(spark, S.to_date_safe, {"03.04.2025": date(2025, 4, 3), "2025-04-03": None}, "dd.MM.yyyy")


def test_normalize_currency(spark):
    check(spark, S.normalize_currency, {" eur ": "EUR", "€": "EUR", "£": "GBP", "$": "USD", "usd": "USD",
                                        "chf": "CHF", "MXN": "MXN", "Euros": "EUR", "XYZ": None, "EURO2": None,
                                        "": None, None: None})


def test_normalize_country(spark):
    cases = {
        "es": "ES", " Es ": "ES", "España": "ES", "spain": "ES", "ESP": "ES",
        "UK": "GB", "United Kingdom": "GB", "Reino Unido": "GB", "england": "GB", "GB": "GB",
        "USA": "US", "U.S.A.": "US", "United States": "US", "Estados Unidos": "US", "EE.UU.": "US",
        "Ireland": "IE", "Irlanda": "IE", "France": "FR", "Francia": "FR", "Germany": "DE", "Alemania": "DE",
        "Italy": "IT", "Italia": "IT", "Portugal": "PT", "México": "MX", "Mexico": "MX", "Argentina": "AR",
        "jp": "JP", "Narnia": None, "XX": None, "unknown": None, "": None, None: None,
    }
    check(spark, S.normalize_country, cases)


def test_parse_bool(spark):
    check(spark, S.parse_bool, {**dict.fromkeys(["true", "YES", "y", "1", "si", "Sí", "t", " True "], True),
                                **dict.fromkeys(["false", "No", "n", "0", "F"], False),
                                "maybe": None, "2": None, "": None, None: None})


def test_normalize_gender(spark):
    check(spark, S.normalize_gender, {**dict.fromkeys(["M", "male", "Hombre", "h", "masculino"], "M"),
                                      **dict.fromkeys(["f", "Female", "MUJER", "femenino"], "F"),
                                      **dict.fromkeys(["X", "other", "Non-Binary", "otro"], "X"),
                                      "?": None, "unknown": None, "": None, None: None})


def test_normalize_postal_code(spark):
    check(spark, S.normalize_postal_code, {" sw1a   1aa ": "SW1A 1AA", "28013": "28013", "d02\tx285": "D02 X285",
                                           "  ": None, "": None, None: None})


def test_normalize_handle(spark):
    check(spark, S.normalize_handle, {
        "@JoseM": "josem", " @@ana_g ": "ana_g", "https://twitter.com/JoseM": "josem",
        "http://www.instagram.com/ana.g/": "ana.g", "facebook.com/jose.munoz?ref=x": "jose.munoz",
        "https://x.com/@Pepe": "pepe", "https://www.tiktok.com/@pepe": "pepe", "@": None, "": None, None: None,
    })


def test_to_amount(spark):
    check(spark, S.to_amount, {
        "1234.50": 1234.5, "1.234,50": 1234.5, "1234,50": 1234.5, "€12.30": 12.3, "12,30 €": 12.3,
        "1,234,567.89": 1234567.89, "1.234.567": 1234567.0, "EUR 1.234,50": 1234.5, "-7.5": -7.5, "€-3": -3.0,
        "0": 0.0, " 42 ": 42.0, "1 234,50": 1234.5,
        "abc": None, "12abc": None, "12 usd": 12.0, "12 USN": None, "1.2.3,4": None, "1,2,3": None, "12.": None, "--5": None,
            # a double >= 1e7 reaches us as Spark's text for it (Parquet exports): read; NaN and overflow: no amount
            "1e5": 100000.0, "1.2345678E7": 12345678.0, "NaN": None, "1" + "0" * 400: None,
        "": None, None: None,
    })


def test_functions_are_deterministic(spark):
    df = spark.createDataFrame([("José@x.com", "612345678", "2025-01-01")], "a string, b string, c string")
    cols = [S.normalize_email("a"), S.match_name("a"), S.normalize_phone("b"), S.to_utc_timestamp("c"),
            S.to_amount("b"), S.normalize_country("a")]
    exprs = df.select(*cols)._jdf.queryExecution().analyzed().expressions()
    assert exprs.size() == len(cols)
    assert all(exprs.apply(i).deterministic() for i in range(exprs.size()))
