"""The run report's sections on customer behaviour: the purchase funnel, the top journey paths (with the Sankey
diagram's flows, layout and drawing), the RFM segment map, cohort retention and satisfaction (NPS, CSAT).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from markupsafe import Markup
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as BezierPath
from matplotlib.ticker import MaxNLocator, PercentFormatter
from pyspark.sql import Window
from pyspark.sql import functions as F

from cdp.io import Lakehouse
from cdp.reports.figures import ACCENT, INK, MUTED, PRIMARY, Colours, _figure, _text, svg_markup
from cdp.reports.page_data import Cell, Grid, Plot, Section, _n, _pct
from cdp.tables import CUSTOMER_PROFILE, FUNNELS, JOURNEY_PATHS, KPI_COHORT_RETENTION, KPI_SATISFACTION

TOP_PATHS = 10            # paths per outcome in the Sankey diagram
MAX_COHORTS = 24
MAX_MONTHS = 36


# ---------------------------------------------------------------- funnel

@dataclass(frozen=True)
class FunnelStep:
    number: int
    step: str
    entrants: int
    by_channel: dict[str, int]


@dataclass(frozen=True)
class Funnel:
    steps: list[FunnelStep]
    first_period: date | None
    last_period: date | None


def funnel_steps(lake: Lakehouse) -> Funnel | None:
    """The funnel summed over all periods: sessions reaching each step, per entry channel."""
    cells = (lake.read(FUNNELS).groupBy("step_number", "step", "channel")
             .agg(F.sum("entrants").alias("n"), F.min("period").alias("first"), F.max("period").alias("last"))
             .orderBy("step_number", "channel").collect())
    if not cells:
        return None
    steps: dict[tuple[int, str], dict[str, int]] = {}
    for c in cells:
        steps.setdefault((c["step_number"], c["step"]), {})[c["channel"] or "(unknown)"] = c["n"] or 0
    return Funnel([FunnelStep(n, s, sum(ch.values()), ch) for (n, s), ch in sorted(steps.items())],
                  min(c["first"] for c in cells), max(c["last"] for c in cells))


def _funnel_section(funnel: Funnel, colours: Colours) -> Section:
    steps = funnel.steps
    channels = sorted({c for s in steps for c in s.by_channel}, key=lambda c: (-sum(s.by_channel.get(c, 0)
                                                                                    for s in steps), c))
    fig = _figure(9.5, 1.2 + 0.45 * len(steps))
    ax = fig.add_subplot()
    positions = list(range(len(steps)))
    left = [0] * len(steps)
    for channel in channels:
        values = [s.by_channel.get(channel, 0) for s in steps]
        ax.barh(positions, values, left=left, color=colours(channel), label=_text(channel))
        left = [a + b for a, b in zip(left, values, strict=True)]
    top = steps[0].entrants or 1
    for p, s in zip(positions, steps, strict=True):
        ax.annotate(f"{s.entrants:,} ({s.entrants / top:.0%})", (s.entrants, p), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(positions, [_text(s.step) for s in steps])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, max(s.entrants for s in steps) * 1.15 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="Sessions reaching each funnel step, by entry channel", xlabel="sessions")
    ax.legend(title="entry channel", title_fontsize=8, loc="lower right", ncols=min(len(channels), 4))
    rows = [[Cell(s.step), _n(s.entrants), _pct(s.entrants / prev.entrants if prev and prev.entrants else None),
             _pct(s.entrants / top)] for prev, s in zip([None, *steps[:-1]], steps, strict=True)]
    return Section("funnel", "Purchase funnel", str(FUNNELS), plots=[Plot(svg_markup(fig, "funnel"), (
        f"Sessions that reached each step in order, summed over the periods {funnel.first_period} to "
        f"{funnel.last_period} (from {FUNNELS}); the percentage is conversion from the first step. A session "
        "counts under the channel of its first touchpoint."))],
        grids=[Grid(["step", "sessions", "from the previous step", "from the first step"], rows)])


# ---------------------------------------------------------------- journey paths (Sankey)

@dataclass(frozen=True)
class JourneyPath:
    outcome: str
    elements: list[str]
    journeys: int
    share: float


def top_paths(lake: Lakehouse, n: int = TOP_PATHS) -> list[JourneyPath]:
    """The n most frequent paths of each outcome, by outcome then rank."""
    rows = (lake.read(JOURNEY_PATHS).where(F.col("rank") <= n).orderBy("outcome", "rank")
            .select("outcome", "path", "journeys", "share").collect())
    return [JourneyPath(r["outcome"], r["path"].split(" > "), r["journeys"] or 0, r["share"] or 0.0) for r in rows]


Node = tuple[int, str]   # (column, path element)


def sankey_flows(paths: list[JourneyPath], outcome: str) -> tuple[dict[Node, int], dict[tuple[Node, Node], int]]:
    """Nodes with the journeys through them and the links between consecutive columns; paths are right-aligned,
    so every last touchpoint sits in the column before the outcome's."""
    columns = max((len(p.elements) for p in paths), default=0)
    nodes: dict[Node, int] = {}
    links: dict[tuple[Node, Node], int] = {}
    for p in paths:
        keys = [(columns - len(p.elements) + i, e) for i, e in enumerate(p.elements)] + [(columns, outcome)]
        for k in keys:
            nodes[k] = nodes.get(k, 0) + p.journeys
        for a, b in zip(keys, keys[1:], strict=False):
            links[(a, b)] = links.get((a, b), 0) + p.journeys
    return nodes, links


def sankey_layout(nodes: dict[Node, int], links: dict[tuple[Node, Node], int], gap: float = 0.025
                  ) -> tuple[dict[Node, tuple[float, float]], float]:
    """(top, height) of every node in [0, 1] (0 = top) and the height of one journey. Columns are centred; the
    last is ordered by size, the others by where their journeys go (fewer crossings)."""
    columns: dict[int, list[Node]] = {}
    for k in nodes:
        columns.setdefault(k[0], []).append(k)
    scale = min((1 - gap * (len(ks) - 1)) / max(sum(nodes[k] for k in ks), 1) for ks in columns.values())
    place: dict[Node, tuple[float, float]] = {}

    def stack(order: list[Node]) -> None:
        y = (1 - sum(nodes[k] for k in order) * scale - gap * (len(order) - 1)) / 2
        for k in order:
            place[k] = (y, nodes[k] * scale)
            y += nodes[k] * scale + gap

    def centre(k: Node) -> float:
        out = [(place[t][0] + place[t][1] / 2, v) for (s, t), v in links.items() if s == k]
        return sum(y * v for y, v in out) / max(sum(v for _, v in out), 1)

    last = max(columns, default=0)
    if columns:
        stack(sorted(columns[last], key=lambda k: (-nodes[k], k[1])))
    for c in range(last - 1, -1, -1):
        stack(sorted(columns.get(c, []), key=lambda k: (centre(k), -nodes[k], k[1])))
    return place, scale


def _sankey_plot(paths: list[JourneyPath], outcome: str, name: str, colours: Colours) -> Markup:
    nodes, links = sankey_flows(paths, outcome)
    place, scale = sankey_layout(nodes, links)
    last, width = max(c for c, _ in nodes), 0.1
    fig = _figure(9.5, 5.2)
    ax = fig.add_subplot()
    out_y = {k: place[k][0] for k in nodes}
    in_y = dict(out_y)
    # sources top to bottom, then targets: a node's bands leave in the order of their targets and arrive in the
    # order of their sources
    for (s, t), v in sorted(links.items(), key=lambda kv: (place[kv[0][0]][0], place[kv[0][1]][0])):
        h, y0, y1 = v * scale, out_y[s], in_y[t]
        out_y[s] += h
        in_y[t] += h
        x0, x1 = s[0] + width, t[0]
        xm = (x0 + x1) / 2
        band = BezierPath([(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 + h), (xm, y1 + h), (xm, y0 + h),
                           (x0, y0 + h), (x0, y0)],
                          [BezierPath.MOVETO, *[BezierPath.CURVE4] * 3, BezierPath.LINETO,
                           *[BezierPath.CURVE4] * 3, BezierPath.CLOSEPOLY])
        ax.add_patch(PathPatch(band, facecolor=colours(s[1]), edgecolor="none", alpha=0.35))
    for (c, label), (y, h) in place.items():
        ax.add_patch(Rectangle((c, y), width, h, facecolor=colours(label) if c < last else INK, edgecolor="none"))
        channel, _, event = label.partition(":")
        count = f"{nodes[(c, label)]:,}"
        text = (f"{channel}\n{event} · {count}" if event and h >= 0.045 else
                f"{event or channel} · {count}" if h >= 0.022 else "")
        if text:
            ax.text(c + width + 0.03, y + h / 2, _text(text), va="center", ha="left", fontsize=7, color=INK,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75})
    for c in range(last + 1):
        heading = "outcome" if c == last else "last touchpoint" if c == last - 1 else f"{last - c} before"
        ax.text(c, -0.03, heading, ha="left", va="bottom", fontsize=8, color="#52606d")
    ax.set_xlim(-0.05, last + 1.0)
    ax.set_ylim(1.02, -0.08)
    ax.axis("off")
    ax.set_title(_text(f"Top {len(paths)} paths before '{outcome}'"))
    return svg_markup(fig, name)


def _paths_section(paths: list[JourneyPath], colours: Colours) -> Section:
    plots, grids = [], []
    for i, outcome in enumerate(sorted({p.outcome for p in paths}, key=lambda o: (o != "purchase", o))):
        chosen = [p for p in paths if p.outcome == outcome]
        plots.append(Plot(_sankey_plot(chosen, outcome, f"paths-{i}", colours), (
            f"The {len(chosen)} most frequent paths before '{outcome}' (from {JOURNEY_PATHS}), "
            f"{sum(p.share for p in chosen):.0%} of its journeys: each column is a touchpoint, paths end at the "
            "outcome, band width is journeys. Small nodes are unlabelled; the table lists every path.")))
        grids.append(Grid(["rank", "path", "journeys", "share"],
                          [[_n(r), Cell(" > ".join(p.elements)), _n(p.journeys), _pct(p.share)]
                           for r, p in enumerate(chosen, 1)], f"Paths before '{outcome}'"))
    return Section("journey-paths", "Top journey paths", str(JOURNEY_PATHS), plots=plots, grids=grids)


# ---------------------------------------------------------------- RFM segments

RfmCell = tuple[int | None, float | None, str, int]   # (r_score, fm_score, rfm_segment, customers)
FM_SCORES = [1 + 0.5 * i for i in range(9)]


def rfm_cells(lake: Lakehouse) -> list[RfmCell]:
    """Customers per score cell and segment (customers without a purchase have no scores)."""
    cells = lake.read(CUSTOMER_PROFILE).groupBy("r_score", "fm_score", "rfm_segment").agg(
        F.count(F.lit(1)).alias("n"))
    return [(c["r_score"], c["fm_score"], c["rfm_segment"] or "(none)", c["n"])
            for c in cells.orderBy("r_score", "fm_score", "rfm_segment").collect()]


def segment_map(rules) -> dict[tuple[int, float], str]:
    """The segment of every (R, FM) score cell by conf/profile.yaml rfm.segments (`rules`: the first that matches)."""
    return {(r, fm): next(s.name for s in rules if s.matches(r, fm)) for r in range(1, 6) for fm in FM_SCORES}


def _rfm_plot(cells: list[RfmCell], segments: dict[tuple[int, float], str]) -> Markup:
    counts = np.zeros((len(FM_SCORES), 5))
    for r, fm, _, n in cells:
        if (r, fm) in segments:
            counts[FM_SCORES.index(fm), r - 1] += n
    fig = _figure(9.5, 5.6)
    ax = fig.add_subplot()
    image = ax.imshow(counts, origin="lower", cmap="Blues", aspect="auto", extent=(0.5, 5.5, 0.75, 5.25),
                      vmin=0, vmax=max(counts.max(), 1))
    fig.colorbar(image, ax=ax, label="customers", shrink=0.8)
    ax.grid(False)
    dark = counts.max() * 0.6
    for (row, col), n in np.ndenumerate(counts):
        if n:
            ax.text(col + 1, FM_SCORES[row] + 0.07, f"{n:,.0f}", ha="center", va="center", fontsize=8,
                    color="white" if n > dark else INK)
    regions: dict[str, list[tuple[int, float]]] = {}
    for (r, fm), name in segments.items():
        regions.setdefault(name, []).append((r, fm))
        if segments.get((r + 1, fm), name) != name:         # a line between neighbouring cells of two segments
            ax.plot([r + 0.5, r + 0.5], [fm - 0.25, fm + 0.25], color=INK, linewidth=1.4)
        if segments.get((r, fm + 0.5), name) != name:
            ax.plot([r - 0.5, r + 0.5], [fm + 0.25, fm + 0.25], color=INK, linewidth=1.4)
    for name, region in regions.items():                     # the name once, in the cell nearest the middle
        mid_r, mid_fm = sum(c[0] for c in region) / len(region), sum(c[1] for c in region) / len(region)
        r, fm = min(region, key=lambda c: ((c[0] - mid_r) ** 2 + (2 * (c[1] - mid_fm)) ** 2, c))
        shade = counts[FM_SCORES.index(fm), r - 1] > dark
        ax.text(r, fm - 0.1, _text(name), ha="center", va="center", fontsize=6.5, fontweight="bold",
                color="white" if shade else "#52606d")
    ax.set_xticks(range(1, 6))
    ax.set_yticks(FM_SCORES, [f"{v:g}" for v in FM_SCORES])
    ax.set(title="Customers by recency and frequency-monetary score", xlabel="recency score R (5 = most recent)",
           ylabel="FM score = (F + M) / 2 (5 = most purchases, highest spend)")
    return svg_markup(fig, "rfm-map")


def _rfm_section(cells: list[RfmCell], segments: dict[tuple[int, float], str]) -> Section:
    sizes: dict[str, int] = {}
    for _, _, seg, n in cells:
        sizes[seg] = sizes.get(seg, 0) + n
    total = sum(sizes.values())
    rows = [[Cell(s), _n(n), _pct(n / total)] for s, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Section("rfm-segments", "RFM segment map", str(CUSTOMER_PROFILE), plots=[Plot(
        _rfm_plot(cells, segments), (
            f"Purchasing customers of {CUSTOMER_PROFILE} by recency score and FM score (quintiles among purchasing "
            "customers); colour and number are customers. Lines and names are the segments of conf/profile.yaml "
            "rfm.segments. The table counts every customer by the segment the profile gives them."))],
        grids=[Grid(["segment", "customers", "share"], rows)])


# ---------------------------------------------------------------- cohort retention

CohortCell = tuple[date, int, int, float]   # (cohort_month, months_since_first, customers, retention_rate)


def cohort_retention(lake: Lakehouse, max_cohorts: int = MAX_COHORTS) -> list[CohortCell]:
    """The latest max_cohorts cohorts over their first max_cohorts months."""
    retention = lake.read(KPI_COHORT_RETENTION)
    latest = F.max("cohort_month").over(Window.partitionBy())   # a mart of months x months: one partition is fine
    rows = (retention.where(F.col("months_since_first") < max_cohorts).withColumn("_latest", latest)
            .where(F.col("cohort_month") > F.add_months("_latest", -max_cohorts))
            .orderBy("cohort_month", "months_since_first").collect())
    return [(r["cohort_month"], r["months_since_first"], r["customers"], r["retention_rate"]) for r in rows]


def _cohort_plot(cells: list[CohortCell]) -> Markup:
    cohorts = sorted({c for c, _, _, _ in cells})
    months = max(m for _, m, _, _ in cells) + 1
    rates = np.full((len(cohorts), months), np.nan)
    sizes: dict[date, int] = {}
    for c, m, n, rate in cells:
        rates[cohorts.index(c), m] = np.nan if rate is None else rate
        sizes[c] = n
    later = rates[:, 1:] if months > 1 else rates
    top = float(np.nanmax(later)) if np.isfinite(later).any() and np.nanmax(later) > 0 else 1.0
    fig = _figure(9.5, 1.3 + 0.26 * len(cohorts))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", aspect="auto", vmin=0, vmax=top)
    fig.colorbar(image, ax=ax, label="retention", shrink=0.8, format=PercentFormatter(1.0, decimals=0))
    ax.grid(False)
    for (row, col), rate in np.ndenumerate(rates):
        if np.isfinite(rate):
            ax.text(col, row, f"{rate:.0%}", ha="center", va="center", fontsize=6,
                    color="white" if rate > top * 0.6 else INK)
    ax.set_yticks(range(len(cohorts)), [f"{c:%Y-%m}  (n={sizes[c]:,})" for c in cohorts])
    ax.set_xticks(range(months))
    ax.tick_params(axis="both", labelsize=7)
    ax.set(title="Purchase retention by first-purchase cohort", xlabel="months since the first purchase",
           ylabel="cohort (first-purchase month)")
    return svg_markup(fig, "cohorts")


def _cohort_section(cells: list[CohortCell]) -> Section:
    return Section("cohort-retention", "Cohort retention", str(KPI_COHORT_RETENTION), plots=[Plot(
        _cohort_plot(cells), (
            f"Share of each first-purchase cohort that purchased N months later (from {KPI_COHORT_RETENTION}; the "
            f"latest {MAX_COHORTS} cohorts). Month 0 is the whole cohort, so the colour scale stops at the highest "
            "later rate; the last month of the data may be incomplete."))])


# ---------------------------------------------------------------- satisfaction

SatisfactionMonth = tuple[date, float | None, int, float | None, int]  # month, nps, answers, csat_avg, answers


def satisfaction_trend(lake: Lakehouse, months: int = MAX_MONTHS) -> list[SatisfactionMonth]:
    """The latest `months` months, oldest first."""
    rows = lake.read(KPI_SATISFACTION).orderBy(F.desc("month")).limit(months).collect()
    return [(r["month"], r["nps"], r["nps_responses"] or 0, r["csat_avg"], r["csat_responses"] or 0)
            for r in reversed(rows)]


def _satisfaction_section(trend: list[SatisfactionMonth]) -> Section:
    fig = _figure(9.5, 5.0)
    nps_ax, csat_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    first = trend[0][0]
    x = [(t[0].year - first.year) * 12 + t[0].month - first.month for t in trend]   # months without answers: gaps
    answers = nps_ax.twinx()
    answers.bar(x, [t[2] for t in trend], color=MUTED, alpha=0.35, width=0.7)
    answers.set_ylabel("NPS answers", color="#7b8794")
    answers.grid(False)
    answers.yaxis.set_major_locator(MaxNLocator(integer=True))
    answers.spines["right"].set_visible(True)
    nps_ax.set_zorder(answers.get_zorder() + 1)
    nps_ax.patch.set_visible(False)
    nps_ax.plot(x, [np.nan if t[1] is None else t[1] for t in trend], color=PRIMARY, marker="o", markersize=3.5,
                linewidth=1.8)
    nps_ax.set_ylim(-105, 105)
    nps_ax.axhline(0, color=MUTED, linewidth=0.8)
    nps_ax.set(title="Net Promoter Score and CSAT by month", ylabel="NPS (-100 to 100)")
    csat_ax.plot(x, [np.nan if t[3] is None else t[3] for t in trend], color=ACCENT, marker="o", markersize=3.5,
                 linewidth=1.8)
    csat_ax.set(ylabel="average CSAT (1-5)", ylim=(1, 5), xlabel="month")
    span = x[-1] + 1
    step = -(-span // 12)                                   # at most 12 month labels
    ticks = list(range(0, span, step))
    csat_ax.set_xticks(ticks, [f"{first.year + (first.month - 1 + k) // 12}-{(first.month - 1 + k) % 12 + 1:02d}"
                               for k in ticks])
    csat_ax.set_xlim(-0.7, span - 0.3)
    latest = trend[-1]
    facts = [("latest month", f"{latest[0]:%Y-%m}"),
             ("NPS that month", "no answer" if latest[1] is None else f"{latest[1]:+.0f}"),
             ("NPS answers shown", f"{sum(t[2] for t in trend):,}")]
    return Section("satisfaction", "Customer satisfaction (NPS)", str(KPI_SATISFACTION), facts=facts, plots=[Plot(
        svg_markup(fig, "satisfaction"), (
            f"Monthly NPS (% promoters - % detractors; grey bars: answers) and average CSAT from {KPI_SATISFACTION}, "
            f"the latest {MAX_MONTHS} months at most. A month with few answers swings widely."))])
