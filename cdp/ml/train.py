"""Churn models on gold.churn_features: a time-based split (train on the earlier snapshots, validate on the later
ones), one preprocessing (missing-value indicators, median imputation, one-hot categories, one vector), a
gradient-boosted-trees classifier and a logistic-regression baseline, each with its hyperparameters picked by
TrainValidationSplit within the training snapshots and churners weighted up by the class ratio."""

from __future__ import annotations

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
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.errors import InsufficientData
from cdp.ml.config import CATEGORICAL, ChurnConfig
from cdp.ml.evaluate import LABEL, Evaluation, churn_probability, evaluate_score

VECTOR = "features_vector"
WEIGHT = "class_weight"
RECENCY_BASELINE = "days_since_last_activity"


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


def preprocessing(features: list[str]) -> list:
    """Stages turning the feature columns into one vector: a 0/1 missing indicator per numeric feature (no NPS
    answer is itself a signal), the median for the missing value, categories one-hot (unseen -> their own slot)."""
    numeric = [f for f in features if f not in CATEGORICAL]
    categorical = [f for f in features if f in CATEGORICAL]
    indicators = ", ".join(f"CAST({f} IS NULL AS DOUBLE) AS {f}__missing" for f in numeric)
    stages: list = [SQLTransformer(statement=f"SELECT *{', ' + indicators if numeric else ''} FROM __THIS__")]
    inputs: list[str] = []
    if numeric:
        stages.append(Imputer(inputCols=numeric, outputCols=[f"{f}__imputed" for f in numeric], strategy="median"))
        inputs += [f"{f}__imputed" for f in numeric] + [f"{f}__missing" for f in numeric]
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


def _search(pipeline: Pipeline, grid: list, train: DataFrame, config: ChurnConfig, kind: str) -> Candidate:
    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, metricName="areaUnderPR")
    tvs = TrainValidationSplit(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator,
                               trainRatio=config.model.train_ratio, seed=config.model.seed)
    # one combination: nothing to choose, fit once on all training rows
    model = pipeline.fit(train, grid[0]) if len(grid) == 1 else tvs.fit(train).bestModel
    best = dict(zip(_names(grid), _values(grid, model), strict=True))
    return Candidate(kind, model, best)


def _names(grid: list) -> list[str]:
    return sorted({p.name for m in grid for p in m})


def _values(grid: list, model: PipelineModel) -> list[object]:
    last = model.stages[-1]
    return [last.getOrDefault(last.getParam(name)) for name in _names(grid)]


def train_churn_models(features: DataFrame, snapshots: list[date], config: ChurnConfig) -> TrainingResult:
    """Fit GBT and the logistic-regression baseline on the training snapshots, evaluate both and the recency-only
    baseline on the held-out snapshots; the better model on compare_on is `best`."""
    split = time_split(features, snapshots, config.snapshots.held_out)
    usable, dropped = features_with_values(split.train, config.features)
    train, weight = with_class_weights(split.train, config.model.class_weights)
    pre = preprocessing(usable)
    g = config.model.grid
    gbt = GBTClassifier(featuresCol=VECTOR, labelCol=LABEL, weightCol=WEIGHT, seed=config.model.seed)
    gbt_grid = (ParamGridBuilder().addGrid(gbt.maxDepth, g.max_depth).addGrid(gbt.maxIter, g.max_iter)
                .addGrid(gbt.stepSize, g.step_size).build())
    lr = LogisticRegression(featuresCol="scaled_features", labelCol=LABEL, weightCol=WEIGHT, maxIter=100)
    lr_grid = ParamGridBuilder().addGrid(lr.regParam, g.reg_param).addGrid(lr.elasticNetParam,
                                                                             g.elastic_net_param).build()
    scaler = StandardScaler(inputCol=VECTOR, outputCol="scaled_features")
    candidates = [_search(Pipeline(stages=[*pre, gbt]), gbt_grid, train, config, "gbt"),
                  _search(Pipeline(stages=[*pre, scaler, lr]), lr_grid, train, config, "logistic_regression")]
    for c in candidates:
        c.evaluation = evaluate_score(score_frame(c.model, split.held_out, weight), "churn_probability")
    baseline = evaluate_score(split.held_out.withColumn("_recency", F.coalesce(F.col(RECENCY_BASELINE),
                                                                               F.lit(1e9))),
                              "_recency", is_probability=False)
    best = max(candidates, key=lambda c: getattr(c.evaluation, config.model.compare_on))
    rows = {"train": train.count(), "held_out": split.held_out.count()}
    return TrainingResult(best, candidates, baseline, usable, dropped, split, weight, rows)


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
