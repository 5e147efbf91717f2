"""gold.next_best_action: one retention action per at-risk customer (any risk band but the lowest), the first rule
of conf/churn.yaml actions.rules whose conditions hold on risk, value, recent complaints and preferred channel and
whose channel the customer consented to. A customer no rule may contact gets `no_action` with the reason: listed,
never dropped, and never contacted on a channel without consent."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config.churn import Action, Actions, Scoring

ACTION_COLUMNS = ("customer_id", "as_of", "risk_band", "churn_probability", "expected_value", "preferred_channel",
                  "action", "channel", "description", "reason", "model_version")


def conditions(rule: Action, days_since_complaint: Column) -> tuple[Column, str]:
    """(rule's conditions as one Column, the same in words) over the joined columns of `next_best_action`."""
    w = rule.when
    parts: list[tuple[Column, str]] = []
    if w.risk_bands is not None:
        parts.append((F.col("risk_band").isin(w.risk_bands), f"risk {'/'.join(w.risk_bands)}"))
    if w.min_expected_value is not None:
        parts.append((F.col("expected_value") >= w.min_expected_value, f"expected value >= {w.min_expected_value:g}"))
    if w.max_expected_value is not None:
        parts.append((F.col("expected_value") < w.max_expected_value, f"expected value < {w.max_expected_value:g}"))
    if w.complaint_within_days is not None:
        parts.append((days_since_complaint <= w.complaint_within_days,
                      f"complained in the last {w.complaint_within_days} days"))
    if w.preferred_channels is not None:
        parts.append((F.col("preferred_channel").isin(w.preferred_channels),
                      f"prefers {'/'.join(w.preferred_channels)}"))
    cond = F.lit(True)
    for c, _ in parts:
        cond = cond & F.coalesce(c, F.lit(False))   # an unknown value never satisfies a condition
    return cond, ", ".join(text for _, text in parts) or "any at-risk customer"


def next_best_action(scores: DataFrame, value: DataFrame, profile: DataFrame, last_complaints: DataFrame,
                     config: Actions, scoring: Scoring) -> DataFrame:
    """scores: gold.churn_scores; value: gold.customer_value; profile: gold.customer_profile (preferred channel
    and the consent columns); last_complaints: (customer_id, last_complaint_at)."""
    consent_cols = sorted(set(config.consent_columns.values()))
    lowest = scoring.risk_bands[-1].name
    joined = (scores.where(F.col("risk_band") != lowest)
              .join(value.select("customer_id", "expected_value"), "customer_id", "left")
              .join(profile.select("customer_id", "preferred_channel", *consent_cols), "customer_id", "left")
              .join(last_complaints, "customer_id", "left"))
    since = F.datediff(F.col("as_of"), F.to_date("last_complaint_at"))
    chosen = None
    blocked = F.lit(False)       # a rule matched, but its channel is not consented
    for rule in config.rules:
        cond, words = conditions(rule, since)
        consented = F.coalesce(F.col(config.consent_columns[rule.channel]).cast("boolean"), F.lit(False))
        pick = F.struct(F.lit(rule.name).alias("action"), F.lit(rule.channel).alias("channel"),
                        F.lit(rule.description).alias("description"),
                        F.lit(f"{words}; consented to {rule.channel}").alias("reason"))
        chosen = (F.when(cond & consented, pick) if chosen is None else chosen.when(cond & consented, pick))
        blocked = blocked | (cond & ~consented)
    none = F.struct(F.lit(config.no_action).alias("action"), F.lit(None).cast("string").alias("channel"),
                    F.lit(None).cast("string").alias("description"),
                    F.when(blocked, F.lit("a rule matched, but the customer has not consented to its channel"))
                    .otherwise(F.lit("no rule matches this customer")).alias("reason"))
    return (joined.withColumn("_pick", F.coalesce(chosen, none))
            .select("customer_id", "as_of", "risk_band", "churn_probability", "expected_value", "preferred_channel",
                    "_pick.action", "_pick.channel", "_pick.description", "_pick.reason", "model_version"))
