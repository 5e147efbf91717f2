"""Deterministic matching rules -> identity edges. Pure DataFrame transforms, no collect, no cross join.

Blocking: a rule's attribute tuple is its blocking key. Records are grouped by it (one shuffle) and every
record of a group is linked to the group's smallest record_id (with the household guard on: the smallest naming
someone): a star of n-1 edges instead of n(n-1)/2 pairs, which gives the same connected components in linear
size.

Two rule options (conf/identity.yaml):
* ``any_attribute``: the listed attributes are one value space (a handle reused on another site); a record
  takes part once per non-null value and links to records holding the same value in any of them.
* ``household_guard``: a value whose records name people who cannot be the same person (a family email, a
  household landline) is *shared*; inside it records link only with records naming a compatible person,
  and records naming nobody do not link through it.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config.identity import HouseholdGuard, IdentityConfig, Junk, Rule
from cdp.config.identity_attributes import HANDLE_ATTRIBUTES

PERSON_KEY = "_person_key"


def is_blocklisted(attribute: str, junk: Junk) -> Column:
    """True when the attribute's value is a placeholder (literal, case-insensitive) or matches a junk regex."""
    value = F.lower(F.trim(F.col(attribute).cast("string")))
    checks = []
    literals = junk.literals_for(attribute)
    if literals:
        checks.append(value.isin(literals))
    checks += [value.rlike(p) for p in junk.patterns_for(attribute)]
    if not checks:
        return F.lit(False)
    return F.coalesce(reduce(lambda a, b: a | b, checks), F.lit(False))


def evidence(attributes: list[str]) -> Column:
    """'email=jose@gmail.com' or 'phone=+34612345678;first_name_match=jose'."""
    return F.concat_ws(";", *[F.concat(F.lit(f"{a}="), F.col(a).cast("string")) for a in attributes])


def canonical_first_name(column: str, nicknames: dict[str, list[str]]) -> Column:
    """Folded first name with nicknames mapped to their full form (paco -> francisco); null stays null."""
    pairs = [(v, canon) for canon, variants in sorted(nicknames.items()) for v in variants]
    value = F.trim(F.col(column))
    if not pairs:
        return value
    lookup = F.create_map(*[F.lit(x) for pair in pairs for x in pair])
    return F.coalesce(lookup[value], value)


def swapped_neighbours(a: Column, b: Column) -> Column:
    """True when b is a with two adjacent letters swapped (pablo / pbalo, laura / larua, amy / may).

    Levenshtein counts a swap as two edits, so max_edit_distance 1 missed the commonest keying slip: on the
    demo data it was most of the name pairs of ONE person the household guard called two people."""
    n = F.length(a)
    swap = lambda i: F.concat(a.substr(F.lit(1), i - 1), a.substr(i + 1, F.lit(1)), a.substr(i, F.lit(1)),  # noqa: E731
                              a.substr(i + 2, n))
    return ((n >= 2) & (n == F.length(b)) & (a != b) & (F.levenshtein(a, b) == 2)
            & F.exists(F.sequence(F.lit(1), F.greatest(n - 1, F.lit(1))), lambda i: swap(i) == b))


def names_compatible(a: Column, b: Column, max_edit_distance: int) -> Column:
    """Could two canonical first names be one person? Equal, same first token, an initial, a small typo
    (max_edit_distance edits, or, when that allows one, two adjacent letters swapped). Two different initials
    are two names, not a typo (j / a are one edit apart, but james and andrew are not one person)."""
    first = lambda c: F.split(c, " ").getItem(0)  # noqa: E731
    typo = F.levenshtein(a, b) <= max_edit_distance
    if max_edit_distance >= 1:
        typo = typo | swapped_neighbours(a, b)
    typo = typo & (F.length(a) > 1) & (F.length(b) > 1)
    return ((a == b) | (first(a) == first(b))
            | ((F.length(a) == 1) & b.startswith(a)) | ((F.length(b) == 1) & a.startswith(b))
            | typo)


def handle_key(column: str) -> Column:
    """A social handle without the separators people vary between sites (. _ -): ana.garcia_84 -> anagarcia84."""
    return F.nullif(F.regexp_replace(F.col(column), r"[._-]", ""), F.lit(""))


def dates_compatible(a: Column, b: Column) -> Column:
    """Could two birth dates be one person's? Equal, one typo apart (as text) or under a month apart."""
    return (a == b) | (F.levenshtein(a.cast("string"), b.cast("string")) <= 1) | (F.abs(F.datediff(a, b)) <= 31)


def with_derived_attributes(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """Adds the derived matching attributes (config.DERIVED_ATTRIBUTES): first_name_canonical (nicknames mapped)
    and <platform>_handle_key for each social handle column."""
    derived = {"first_name_canonical": canonical_first_name("first_name_match", config.nicknames),
               **{f"{h}_key": handle_key(h) for h in HANDLE_ATTRIBUTES if h in records.columns}}
    return records.withColumns({k: v for k, v in derived.items() if k not in records.columns})


def with_person_key(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """Adds _person_key: the canonical first name the household guard compares (null when the record has none)."""
    guard = config.household_guard
    return records.withColumn(PERSON_KEY, canonical_first_name(guard.name_attribute, config.nicknames))


def _usable(attributes: list[str], junk: Junk | None) -> Column:
    usable = reduce(lambda a, b: a & b, [F.col(a).isNotNull() for a in attributes])
    if junk is not None:
        usable = usable & ~reduce(lambda a, b: a | b, [is_blocklisted(a, junk) for a in attributes])
    return usable


def _entry(rule: Rule, attributes: list[str], values: list[Column], junk: Junk | None) -> Column:
    return F.when(_usable(attributes, junk), F.struct(
        F.lit(rule.name).alias("rule"),
        F.to_json(F.array(*values)).alias("key"),
        evidence(attributes).alias("attribute_values"),
        F.lit(float(rule.weight)).alias("weight"),
        F.lit(rule.household_guard).alias("guarded"),
    ))


def blocking_keys(records: DataFrame, rules: list[Rule], junk: Junk | None = None) -> DataFrame:
    """One row per (record, rule, value) the record can take part in:
    (record_id, rule, key, attribute_values, weight, guarded[, _person_key]).

    key = the rule's attribute values, type-tagged and joined: records with the same key are one block.
    An any_attribute rule contributes one entry per listed attribute the record holds (same key space).
    """
    entries = []
    for r in rules:
        if r.any_attribute:
            entries += [_entry(r, [a], [F.col(a).cast("string")], junk) for a in r.attributes]
        else:
            entries.append(_entry(r, r.attributes, [F.col(a).cast("string") for a in r.attributes], junk))
    carried = [PERSON_KEY] if PERSON_KEY in records.columns else []
    return (
        records.select("record_id", *carried, F.explode(F.array(*entries)).alias("_e"))
        .where(F.col("_e").isNotNull()).select("record_id", *carried, "_e.*")
    )


def block_names(keys: DataFrame) -> DataFrame:
    """(rule, key, names): the person keys each block's records name, for the household guard; no rows when no
    rule is guarded (`rule_keys` then adds no person key: there is nothing to name)."""
    guarded = keys.where(F.col("guarded"))
    if PERSON_KEY not in keys.columns:
        return guarded.select("rule", "key", F.array().cast("array<string>").alias("names")).where(F.lit(False))
    return guarded.groupBy("rule", "key").agg(F.collect_set(PERSON_KEY).alias("names"))


def guard_households(keys: DataFrame, guard: HouseholdGuard, names: DataFrame | None = None) -> DataFrame:
    """Split shared values of guarded rules into one block per person named (see module doc).

    A value is shared when two of its records' person keys are incompatible; then the block key gets the
    person key appended, records without one leave the block, and the evidence says which person it was.
    names: `block_names` over ALL records, when `keys` holds only some records of their blocks (an incremental
    run's): whether a value is shared is a property of all its records.
    """
    if PERSON_KEY not in keys.columns:
        return keys
    if names is None:
        block_names_ = F.collect_set(PERSON_KEY).over(Window.partitionBy("rule", "key"))
    else:
        keys = keys.join(names.withColumnRenamed("names", "_names"), ["rule", "key"], "left")
        block_names_ = F.coalesce(F.col("_names"), F.array().cast("array<string>"))
    names_ = F.array_sort(block_names_)
    shared = F.exists(names_, lambda x: F.exists(names_, lambda y: ~names_compatible(x, y, guard.max_edit_distance)))
    keys = keys.withColumn("_shared", F.col("guarded") & shared).drop("_names")
    return (
        keys.where(~F.col("_shared") | F.col(PERSON_KEY).isNotNull())
        .withColumn("key", F.when(F.col("_shared"), F.concat_ws("|", "key", PERSON_KEY)).otherwise(F.col("key")))
        .withColumn("attribute_values", F.when(
            F.col("_shared"), F.concat(F.col("attribute_values"), F.lit(";shared_by_household;person="), F.col(PERSON_KEY))
        ).otherwise(F.col("attribute_values")))
        .drop("_shared")
    )


def star(keys: DataFrame, block: list[str], prefer: Column | None = None) -> DataFrame:
    """Rows of `keys` (a record_id per row) with `src`, the smallest record_id among the rows agreeing on the
    `block` columns; that smallest record's own row is left out. A block of n records gives n - 1 links, never
    all pairs.

    prefer (a boolean column): the centre is the smallest record_id among the block's rows where it is true
    (the smallest of all when none is); `src` / `record_id` are then swapped where needed so src < record_id.
    """
    if prefer is None:
        return keys.withColumn("src", F.min("record_id").over(Window.partitionBy(*block))).where(
            F.col("src") < F.col("record_id"))
    centre = F.min(F.struct((~F.coalesce(prefer, F.lit(False))).alias("_last"), F.col("record_id").alias("_id")))
    return (keys.withColumn("_centre", centre.over(Window.partitionBy(*block)).getField("_id"))
            .where(F.col("_centre") != F.col("record_id"))
            .withColumn("src", F.least("_centre", "record_id")).withColumn("record_id", F.greatest("_centre", "record_id"))
            .drop("_centre"))


def rule_keys(records: DataFrame, config: IdentityConfig) -> DataFrame:
    """Every (record, rule, blocking key) of the enabled rules, before the household guard (`blocking_keys`)."""
    records = with_derived_attributes(records, config)
    if any(r.household_guard for r in config.enabled_rules) and PERSON_KEY not in records.columns:
        records = with_person_key(records, config)
    return blocking_keys(records, config.enabled_rules, config.junk)


def deterministic_edges(records: DataFrame, config: IdentityConfig, names: DataFrame | None = None) -> DataFrame:
    """records (identity-record columns) -> edges (src < dst, rule, attribute_values, weight), one star per block.

    All rules in one pass: records are exploded to (record, rule, blocking key) and partitioned by
    (rule, key); each record links to its block's smallest record_id naming someone (the smallest of all when
    none does). Blocklisted values never link (mark_junk also nulls them and the too-frequent ones beforehand).
    names: see `guard_households`.
    """
    keys = guard_households(rule_keys(records, config), config.household_guard, names)
    # a block's centre names someone when a record of it does: split_name_conflicts drops guarded links touching
    # a nameless record, and a nameless centre would take the links between the block's named records with it
    named = F.col(PERSON_KEY).isNotNull() if PERSON_KEY in keys.columns else None
    return (
        star(keys, ["rule", "key"], prefer=named)
        .select("src", F.col("record_id").alias("dst"), "rule", "attribute_values", "weight")
        .dropDuplicates(["src", "dst", "rule"])
    )
