"""Churn models on gold.churn_features: a time-based split (train on the earlier snapshots, validate on the later
ones), one preprocessing (missing-value indicators, median imputation, one-hot categories, one vector; log scale
for the linear model), a gradient-boosted-trees classifier and a logistic-regression baseline (model.learners),
each with its hyperparameters picked on a share of the training customers held apart and churners weighted up
by the class ratio.

Reproducible: the same features and seed give the same model, whatever order the rows arrive in. Spark's
randomness is per partition and per row position (rand(seed), the samples GBT bins its features from), and a
rewritten Delta table or a shuffle hands rows over in another order, so the frame is first put in a layout that
depends on its content only (stable_layout) and the hyperparameter split is a hash of the customer, not rand().
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.tuning import ParamGridBuilder
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config.churn import CATEGORICAL, ChurnConfig
from cdp.errors import InsufficientData
from cdp.frames import cache_columns, uncache
from cdp.ml.evaluate import LABEL, Evaluation, churn_probability, evaluate_score

VECTOR = "features_vector"
WEIGHT = "class_weight"
RECENCY_BASELINE = "days_since_last_activity"
# Up to this many rows the training frame is one partition: every sum Spark ML takes is then added in one order,
# and a retrained model is identical to the last bit. Beyond, Spark adds partition results in the order tasks
# finish, which can move a probability in its last digits (the layout and the splits still do not move).
ROWS_PER_PARTITION = 250_000
HASH_BUCKETS = 10_000


def stable_layout(frame: DataFrame, rows_per_partition: int = ROWS_PER_PARTITION) -> DataFrame:
    """`frame` in partitions and an order that depend on its rows alone: hashed by customer into a number of
    partitions set by the row count, sorted by (snapshot_date, customer_id) within each."""
    partitions = max(1, math.ceil(frame.count() / rows_per_partition))
    return frame.repartition(partitions, "customer_id").sortWithinPartitions("snapshot_date", "customer_id")


def customer_split(frame: DataFrame, ratio: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """(fit, check): about `ratio` of the customers and the rest, by a hash of the customer id and the seed, so
    the split does not follow the rows' order and a customer's snapshots never sit on both sides (the check
    measures customers the fit has not seen)."""
    bucket = F.pmod(F.xxhash64(F.col("customer_id"), F.lit(seed)), F.lit(HASH_BUCKETS))
    fit = bucket < F.lit(round(ratio * HASH_BUCKETS))
    return frame.where(fit), frame.where(~fit)


@dataclass(frozen=True)
class TimeSplit:
    train: DataFrame
    held_out: DataFrame
    train_snapshots: list[date]
    held_out_snapshots: list[date]


def time_split(features: DataFrame, snapshots: list[date], held_out: int) -> TimeSplit:
    """The latest `held_out` snapshots validate; the earlier ones train (no customer-time leaks backwards)."""
    ordered = sorted(snapshots)
    train_dates, test_dates = ordered[:-held_out], ordered[-held_out:]
    labelled = features.withColumn(LABEL, F.col("churned").cast("double"))
    return TimeSplit(labelled.where(F.col("snapshot_date").isin(train_dates)),
                     labelled.where(F.col("snapshot_date").isin(test_dates)), train_dates, test_dates)


def features_with_values(frame: DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(features with at least one value in `frame`, features with none): an all-NULL feature (no surveys in an
    orders-only company) cannot be imputed or learned from, so it is left out and said so."""
    counts = frame.agg(*[F.count(F.col(f)).alias(f) for f in features]).first().asDict()
    return [f for f in features if counts[f] > 0], [f for f in features if counts[f] == 0]


def preprocessing(features: list[str], log_scale: bool = False) -> list:
    """Stages turning the feature columns into one vector: a 0/1 missing indicator per numeric feature (no NPS
    answer is itself a signal), the median for the missing value, categories one-hot (unseen -> their own slot);
    with log_scale, each numeric value as sign(x) log(1 + |x|)."""
    numeric = [f for f in features if f not in CATEGORICAL]
    categorical = [f for f in features if f in CATEGORICAL]
    indicators = ", ".join(f"CAST({f} IS NULL AS DOUBLE) AS {f}__missing" for f in numeric)
    stages: list = [SQLTransformer(statement=f"SELECT *{', ' + indicators if numeric else ''} FROM __THIS__")]
    inputs: list[str] = []
    if numeric:
        stages.append(Imputer(inputCols=numeric, outputCols=[f"{f}__imputed" for f in numeric], strategy="median"))
        values = [f"{f}__imputed" for f in numeric]
        if log_scale:
            # a linear model weighs counts, spend and days on their own scale, where a few heavy buyers and old
            # customers set the slope for everyone; on a log scale one purchase more matters most to those with
            # few, as BG/NBD has it (trees split anywhere on any monotone scale: they do not need it)
            logs = ", ".join(f"SIGNUM({f}__imputed) * LN(1 + ABS({f}__imputed)) AS {f}__log" for f in numeric)
            stages.append(SQLTransformer(statement=f"SELECT *, {logs} FROM __THIS__"))
            values = [f"{f}__log" for f in numeric]
        inputs += values + [f"{f}__missing" for f in numeric]
    if categorical:
        stages.append(StringIndexer(inputCols=categorical, outputCols=[f"{c}__index" for c in categorical],
                                    handleInvalid="keep"))
        stages.append(OneHotEncoder(inputCols=[f"{c}__index" for c in categorical],
                                    outputCols=[f"{c}__onehot" for c in categorical], handleInvalid="keep"))
        inputs += [f"{c}__onehot" for c in categorical]
    stages.append(VectorAssembler(inputCols=inputs, outputCol=VECTOR))
    return stages


def with_class_weights(train: DataFrame, enabled: bool) -> tuple[DataFrame, float]:
    """(train with WEIGHT, the churners' weight): churners weigh retained/churned so both classes count alike."""
    counts = train.agg(F.sum(LABEL).alias("pos"), F.count(F.lit(1)).alias("n")).first()
    pos, n = counts["pos"] or 0.0, counts["n"]
    if pos == 0 or pos == n:
        what = "no customer churned" if pos == 0 else "every customer churned"
        raise InsufficientData(f"the training snapshots hold {n} customers and {what}: a churn model needs both; "
                         "move snapshots.last or change definition.horizon_days in conf/churn.yaml")
    weight = (n - pos) / pos if enabled else 1.0
    return train.withColumn(WEIGHT, F.when(F.col(LABEL) == 1.0, weight).otherwise(1.0)), weight


@dataclass
class Candidate:
    kind: str                      # gbt | logistic_regression
    model: PipelineModel
    params: dict[str, object]      # the chosen hyperparameters
    evaluation: Evaluation | None = None


@dataclass
class TrainingResult:
    best: Candidate
    candidates: list[Candidate]
    baseline: Evaluation           # recency alone, on the same held-out rows
    features: list[str]
    dropped_features: list[str]
    split: TimeSplit
    churner_weight: float
    rows: dict[str, int] = field(default_factory=dict)
    frame: DataFrame | None = None   # the cached, laid-out features every frame above reads: release() it

    def release(self) -> None:
        if self.frame is not None:
            uncache(self.frame)


def _search(pipeline: Pipeline, grid: list, train: DataFrame, config: ChurnConfig, kind: str) -> Candidate:
    """The grid's best combination by PR-AUC on the held-apart customers (as TrainValidationSplit, whose
    rand() split follows the rows' order), refitted on every training row; one combination is fitted at once."""
    params = grid[0]
    if len(grid) > 1:
        fit, check = customer_split(train, config.model.train_ratio, config.model.seed)
        evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderPR")
        scores = [evaluator.evaluate(m.transform(check)) for m in pipeline.fit(fit, grid)]
        params = grid[scores.index(max(scores))]
    model = pipeline.fit(train, params)
    best = dict(zip(_names(grid), _values(grid, model), strict=True))
    return Candidate(kind, model, best)


def _names(grid: list) -> list[str]:
    return sorted({p.name for m in grid for p in m})


def _values(grid: list, model: PipelineModel) -> list[object]:
    last = model.stages[-1]
    return [last.getOrDefault(last.getParam(name)) for name in _names(grid)]


def train_churn_models(features: DataFrame, snapshots: list[date], config: ChurnConfig) -> TrainingResult:
    """Fit model.learners (GBT, the logistic regression) on the training snapshots, evaluate them and the
    recency-only baseline on the held-out snapshots; the better model on compare_on is `best`. The features are laid out and
    cached once (TrainingResult.frame): call result.release() when done with the result."""
    laid = stable_layout(features).transform(cache_columns)
    try:
        return _train(laid, snapshots, config)
    except BaseException:
        uncache(laid)
        raise


def _train(features: DataFrame, snapshots: list[date], config: ChurnConfig) -> TrainingResult:
    split = time_split(features, snapshots, config.snapshots.held_out)
    g = config.model.grid
    searched = (("gbt" in config.model.learners and len(g.max_depth) * len(g.max_iter) * len(g.step_size) > 1)
                or ("logistic_regression" in config.model.learners
                    and len(g.reg_param) * len(g.elastic_net_param) > 1))
    # a grid is searched by fitting on part of the customers (customer_split): a feature must have a value there
    # too, or the imputer has no median to learn (a small history: no complaint among the fitted customers)
    fitted = customer_split(split.train, config.model.train_ratio, config.model.seed)[0] if searched else split.train
    usable, dropped = features_with_values(fitted, config.features)
    train, weight = with_class_weights(split.train, config.model.class_weights)
    candidates = []
    if "gbt" in config.model.learners:
        gbt = GBTClassifier(featuresCol=VECTOR, labelCol=LABEL, weightCol=WEIGHT, seed=config.model.seed)
        gbt_grid = (ParamGridBuilder().addGrid(gbt.maxDepth, g.max_depth).addGrid(gbt.maxIter, g.max_iter)
                    .addGrid(gbt.stepSize, g.step_size).build())
        candidates.append(_search(Pipeline(stages=[*preprocessing(usable), gbt]), gbt_grid, train, config, "gbt"))
    if "logistic_regression" in config.model.learners:
        lr = LogisticRegression(featuresCol="scaled_features", labelCol=LABEL, weightCol=WEIGHT, maxIter=100)
        lr_grid = ParamGridBuilder().addGrid(lr.regParam, g.reg_param).addGrid(lr.elasticNetParam,
                                                                                 g.elastic_net_param).build()
        scaler = StandardScaler(inputCol=VECTOR, outputCol="scaled_features")
        candidates.append(_search(Pipeline(stages=[*preprocessing(usable, log_scale=True), scaler, lr]), lr_grid,
                                  train, config, "logistic_regression"))
    for c in candidates:
        c.evaluation = evaluate_score(score_frame(c.model, split.held_out, weight), "churn_probability")
    baseline = evaluate_score(split.held_out.withColumn("_recency", F.coalesce(F.col(RECENCY_BASELINE),
                                                                               F.lit(1e9))),
                              "_recency", is_probability=False)
    best = max(candidates, key=lambda c: getattr(c.evaluation, config.model.compare_on))
    rows = {"train": train.count(), "held_out": split.held_out.count()}
    return TrainingResult(best, candidates, baseline, usable, dropped, split, weight, rows, features)


def score_frame(model: PipelineModel, frame: DataFrame, churner_weight: float = 1.0) -> DataFrame:
    """frame with churn_probability (P(churned)) by `model`, the model's working columns dropped. A model trained
    with churners weighted w states odds w times too high: they are divided by w (the prior correction), so the
    probability is a probability again (the ranking, hence every AUC, is unchanged)."""
    p = churn_probability()
    corrected = p / (p + (1 - p) * F.lit(churner_weight)) if churner_weight != 1.0 else p
    return model.transform(frame).withColumn("churn_probability", corrected).select(*frame.columns,
                                                                                       "churn_probability")


def feature_importances(candidate: Candidate, frame: DataFrame, features: list[str]) -> dict[str, float]:
    """Importance per feature (its missing indicator and one-hot slots summed in), largest first: GBT's own
    importances; for logistic regression the absolute standardised coefficients, normalised to sum 1."""
    last = candidate.model.stages[-1]
    raw = (list(last.featureImportances.toArray()) if candidate.kind == "gbt"
           else [abs(c) for c in last.coefficients.toArray()])
    totals = dict.fromkeys(features, 0.0)
    for name, value in zip(slot_features(candidate.model, frame), raw, strict=True):
        totals[name] += value
    s = sum(totals.values()) or 1.0
    return dict(sorted(((f, v / s) for f, v in totals.items()), key=lambda kv: -kv[1]))


def slot_features(model: PipelineModel, frame: DataFrame) -> list[str]:
    """The feature each slot of the assembled vector comes from, in slot order (from the vector's ML attribute
    metadata, which names every slot `<feature>__imputed`, `<feature>__missing` or `<feature>__onehot_<value>`)."""
    meta = model.transform(frame).schema[VECTOR].metadata["ml_attr"]
    attrs = sorted((a for group in meta["attrs"].values() for a in group), key=lambda a: a["idx"])
    return [a["name"].split("__")[0] for a in attrs]
