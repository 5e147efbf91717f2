"""The run report's sections on churn and value: the churn model (what MLflow holds on the version that scored),
the churn risk distribution, expected customer value and the next best action mix.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from matplotlib.ticker import MaxNLocator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import Settings
from cdp.io import Lakehouse
from cdp.reports.figures import (
    ACCENT,
    INK,
    MUTED,
    PRIMARY,
    _figure,
    _text,
    band_colours,
    band_order,
    png_markup,
    svg_markup,
)
from cdp.reports.page_data import Absent, Cell, Grid, Plot, Section, _f, _n, _pct
from cdp.tables import CHURN_SCORES, CUSTOMER_VALUE, NEXT_BEST_ACTION

PROBABILITY_BINS = 20
VALUE_BINS = 20


# ---------------------------------------------------------------- churn model (MLflow)

@dataclass(frozen=True)
class ChurnModelInfo:
    name: str
    version: str
    aliases: list[str]
    run_id: str
    metrics: dict[str, float]
    roc_png: bytes | None


def churn_model_info(lake: Lakehouse, settings: Settings, churn=None) -> ChurnModelInfo | Absent:
    """What MLflow holds on the model version that scored gold.churn_scores (the champion when there are no
    scores): its training run's held-out metrics and the ROC curve image that run logged. churn: conf/churn.yaml
    as loaded (None: it is absent)."""
    from cdp.config.churn import churn_config_path
    from cdp.tracking import tracking_uri

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return Absent(f"No MLflow store at {uri}: run the churn_model step to train and register a model.")
    scored = (lake.read(CHURN_SCORES).groupBy("model_name", "model_version").count().orderBy(F.desc("count"))
              .first() if lake.exists(CHURN_SCORES) else None)
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    if not scored and churn is None:
        return Absent(f"No churn configuration ({churn_config_path(settings)} is absent): no churn model.")
    name = scored["model_name"] if scored else churn.model.name
    try:
        version = (client.get_model_version(name, scored["model_version"]) if scored
                   else client.get_model_version_by_alias(name, "champion"))
        run = client.get_run(version.run_id)
    except MlflowException:
        which = f"version {scored['model_version']}" if scored else "with the champion alias"
        return Absent(f"MLflow at {uri} has no model {name} {which}: run the churn_model step.")
    try:   # stderr: MLflow draws a progress bar for every download
        with tempfile.TemporaryDirectory(prefix="cdp-report-") as tmp, contextlib.redirect_stderr(io.StringIO()):
            roc = Path(download_artifacts(run_id=run.info.run_id, artifact_path="evaluation/roc_curve.png",
                                          dst_path=tmp, tracking_uri=uri)).read_bytes()
    except (MlflowException, OSError):
        roc = None
    return ChurnModelInfo(name, str(version.version), sorted(version.aliases or []), run.info.run_id,
                          dict(run.data.metrics), roc)


def _churn_model_section(info: ChurnModelInfo) -> Section:
    m = info.metrics
    aliases = f" ({', '.join(info.aliases)})" if info.aliases else ""
    facts = [("model", f"{info.name} version {info.version}{aliases}"), ("MLflow run", info.run_id)]
    figures = (("ROC-AUC", "roc_auc"), ("PR-AUC", "pr_auc"), ("lift in the top decile", "top_decile_lift"),
               ("churners caught in the top decile", "top_decile_capture"), ("churn rate (base rate)", "base_rate"),
               ("expected calibration error", "calibration_error"))
    rows = [[Cell(label), _f(m[f"best_{key}"], 3), _f(m.get(f"recency_baseline_{key}"), 3)]
            for label, key in figures if f"best_{key}" in m]
    plots = [Plot(png_markup(info.roc_png, "roc-curve"), (
        f"ROC curve on the held-out snapshots as training run {info.run_id} logged it to MLflow "
        "(evaluation/roc_curve.png); the report shows it, it does not recompute it."))] if info.roc_png else []
    notes = [] if info.roc_png else ["The training run logged no ROC curve: only its metrics are shown."]
    return Section("churn-model", "Churn model", f"MLflow: the model version that scored {CHURN_SCORES} and its "
                   "training run", facts=facts, plots=plots, notes=notes,
                   grids=[Grid(["held-out figure", "model", "recency-only baseline"], rows)] if rows else [])


# ---------------------------------------------------------------- churn risk

def binned_counts(frame: DataFrame, column: str, low: float, high: float, bins: int, by: str | None = None
                  ) -> list[tuple[int, str | None, int]]:
    """(bin, group, rows) of column's non-null values in `bins` equal bins over [low, high], counted in Spark;
    values outside go to the first or the last bin."""
    width = (high - low) / bins if high > low else 1.0
    bucket = F.least(F.greatest(F.floor((F.col(column) - F.lit(low)) / F.lit(width)), F.lit(0)), F.lit(bins - 1))
    keys = [bucket.cast("int").alias("bin"), (F.col(by) if by else F.lit(None).cast("string")).alias("group")]
    rows = frame.where(F.col(column).isNotNull()).groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
    return [(r["bin"], r["group"], r["n"]) for r in rows.orderBy("bin", "group").collect()]


def risk_histogram(lake: Lakehouse) -> list[tuple[int, str | None, int]]:
    """Scored customers per churn-probability bin and risk band."""
    return binned_counts(lake.read(CHURN_SCORES), "churn_probability", 0.0, 1.0, PROBABILITY_BINS, "risk_band")


def _risk_section(counts: list[tuple[int, str | None, int]], configured_bands: list[str]) -> Section:
    bands = band_order(configured_bands, {g for _, g, _ in counts})
    colours = band_colours(configured_bands)
    fig = _figure(9.5, 3.4)
    ax = fig.add_subplot()
    width = 1 / PROBABILITY_BINS
    bottom = [0] * PROBABILITY_BINS
    totals: dict[str, int] = {}
    for band in bands:
        values = [0] * PROBABILITY_BINS
        for b, g, n in counts:
            if (g or "(none)") == band:
                values[b] += n
        totals[band] = sum(values)
        ax.bar([(i + 0.5) * width for i in range(PROBABILITY_BINS)], values, width=width * 0.92, bottom=bottom,
               color=colours.get(band, MUTED), label=_text(f"{band} ({totals[band]:,})"))
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.set(title="Scored customers by churn probability and risk band", xlabel="churn probability",
           ylabel="customers", xlim=(0, 1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", visible=False)
    ax.legend(title="risk band", title_fontsize=8)
    total = sum(totals.values())
    facts = [("customers scored", f"{total:,}")] + [(f"{b} risk", f"{n:,} ({n / total:.0%})")
                                                    for b, n in totals.items()]
    return Section("churn-risk", "Churn risk distribution", str(CHURN_SCORES), facts=facts, plots=[Plot(
        svg_markup(fig, "risk"), (f"Active customers of {CHURN_SCORES} in {PROBABILITY_BINS} probability bins, "
                                  "coloured by risk band (conf/churn.yaml scoring.risk_bands)."))])


# ---------------------------------------------------------------- customer value

@dataclass(frozen=True)
class ValueDistribution:
    customers: int
    total: float
    median: float
    p99: float
    mean_p_alive: float | None
    bins: list[tuple[int, int]]       # (bin over [0, p99], customers); the last bin holds everything above


def value_distribution(lake: Lakehouse, bins: int = VALUE_BINS) -> ValueDistribution | None:
    """Expected value's summary and its histogram up to the 99th percentile (None: no customer)."""
    value = lake.read(CUSTOMER_VALUE)
    s = value.agg(F.count(F.lit(1)).alias("n"), F.sum("expected_value").alias("total"),
                  F.percentile_approx("expected_value", [0.5, 0.99], 10_000).alias("q"),
                  F.avg("p_alive").alias("p_alive")).first()
    if not s["n"] or s["q"] is None:
        return None
    median, p99 = float(s["q"][0]), float(s["q"][1])
    counts = binned_counts(value, "expected_value", 0.0, max(p99, 1e-9), bins)
    return ValueDistribution(s["n"], float(s["total"] or 0.0), median, p99, s["p_alive"],
                             [(b, n) for b, _, n in counts])


def _value_section(dist: ValueDistribution, horizon_days: int) -> Section:
    width = max(dist.p99, 1e-9) / VALUE_BINS
    fig = _figure(9.5, 3.4)
    ax = fig.add_subplot()
    heights = dict(dist.bins)
    ax.bar([(i + 0.5) * width for i in range(VALUE_BINS)], [heights.get(i, 0) for i in range(VALUE_BINS)],
           width=width * 0.92, color=[PRIMARY] * (VALUE_BINS - 1) + [ACCENT])
    ax.axvline(dist.median, color=INK, linestyle="--", linewidth=1, label=f"median {dist.median:,.0f}")
    ax.set(title=f"Expected customer value over the next {horizon_days} days", ylabel="customers",
           xlabel="expected value (last bar: the 99th percentile and above)")
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    facts = [("customers valued", f"{dist.customers:,}"), ("total expected value", f"{dist.total:,.0f}"),
             ("median", f"{dist.median:,.2f}"), ("99th percentile", f"{dist.p99:,.2f}")]
    if dist.mean_p_alive is not None:
        facts.append(("mean P(alive)", f"{dist.mean_p_alive:.1%}"))
    return Section("customer-value", "Customer value", str(CUSTOMER_VALUE), facts=facts, plots=[Plot(
        svg_markup(fig, "value"), (
            f"Customers of {CUSTOMER_VALUE} by BG/NBD + Gamma-Gamma expected value over {horizon_days} days "
            f"(conf/churn.yaml value.horizon_days), in {VALUE_BINS} bins up to the 99th percentile; the orange "
            "bar holds the top 1%."))])


# ---------------------------------------------------------------- next best action

ActionCount = tuple[str, str | None, str | None, str | None, int]   # action, channel, description, band, customers


def action_mix(lake: Lakehouse) -> list[ActionCount]:
    """Customers per action and risk band, most first."""
    mix = lake.read(NEXT_BEST_ACTION).groupBy("action", "channel", "description", "risk_band").agg(
        F.count(F.lit(1)).alias("n"))
    return [(r["action"], r["channel"], r["description"], r["risk_band"], r["n"])
            for r in mix.orderBy(F.desc("n"), "action", "risk_band").collect()]


def _action_section(mix: list[ActionCount], configured_bands: list[str]) -> Section:
    actions: dict[str, list] = {}     # action -> [channel, description, customers]
    for action, channel, description, _, n in mix:
        actions.setdefault(action, [channel, description, 0])[2] += n
    order = sorted(actions, key=lambda a: (-actions[a][2], a))
    colours = band_colours(configured_bands)
    fig = _figure(9.5, 1.1 + 0.4 * len(order))
    ax = fig.add_subplot()
    left = [0] * len(order)
    for band in band_order(configured_bands, {m[3] for m in mix}):
        values = [sum(n for a, _, _, b, n in mix if a == action and (b or "(none)") == band) for action in order]
        ax.barh(range(len(order)), values, left=left, color=colours.get(band, MUTED), label=_text(band), height=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for p, total in enumerate(left):
        ax.annotate(f"{total:,}", (total, p), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(range(len(order)), [_text(f"{a} ({actions[a][0] or 'no channel'})") for a in order])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set(title="Retention actions chosen for at-risk customers", xlabel="customers")
    ax.set_xlim(0, max(left) * 1.1 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(title="risk band", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    total = sum(a[2] for a in actions.values())
    rows = [[Cell(a), Cell(actions[a][0] or ""), Cell(actions[a][1] or ""), _n(actions[a][2]),
             _pct(actions[a][2] / total)] for a in order]
    return Section("next-best-action", "Next best action", str(NEXT_BEST_ACTION), plots=[Plot(
        svg_markup(fig, "actions"), (
            f"The action chosen for each at-risk customer of {NEXT_BEST_ACTION} (the first rule of conf/churn.yaml "
            "actions.rules that holds, on a consented channel), by risk band."))],
        grids=[Grid(["action", "channel", "what to do", "customers", "share"], rows)])
