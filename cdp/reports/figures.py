"""The run report's plots: the matplotlib style and colours every plot shares, figures drawn with matplotlib's
object API (no pyplot state), turned into inline markup (an SVG with its ids prefixed, or a PNG data URI when
too big), and the bar helper several sections use.
"""

from __future__ import annotations

import base64
import io
import re

import matplotlib
from markupsafe import Markup
from matplotlib.colors import LinearSegmentedColormap, to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

MAX_SVG_CHARS = 400_000   # a bigger plot is embedded as a PNG instead

PRIMARY, ACCENT, MUTED, INK = "#3b6ea8", "#e07b39", "#9aa5b1", "#1f2933"
PALETTE = ["#3b6ea8", "#e07b39", "#5aa469", "#c44e52", "#8172b2", "#937860", "#d684bd", "#7f7f7f", "#bcbd22",
           "#17becf", "#9ec5e8", "#f5b97f", "#a4d49b", "#f09c9e", "#c5b3e0", "#c9a995", "#f4c2e2", "#c7c7c7",
           "#dbdb8d", "#9edae5"]   # ten colours, then ten lighter ones
RISK = LinearSegmentedColormap.from_list("risk", ["#c62828", "#c77c02", "#2f8132"])   # highest band first
STYLE = {
    "svg.fonttype": "none",            # text stays text: small, searchable, escaped by matplotlib
    "svg.hashsalt": "cdp-run-report",  # the same ids every time: the same data gives the same page
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.titlelocation": "left", "axes.labelsize": 9, "axes.labelcolor": "#3e4c59", "axes.edgecolor": MUTED,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
    "grid.color": "#e4e7eb", "grid.linewidth": 0.8, "xtick.color": "#52606d", "ytick.color": "#52606d",
    "legend.frameon": False, "legend.fontsize": 8, "figure.facecolor": "white",
}


class Colours:
    """One colour per name across a page's plots: a channel has the same colour in the funnel and the paths."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        return self._given.setdefault(name, PALETTE[len(self._given) % len(PALETTE)])


def band_colours(bands: list[str]) -> dict[str, str]:
    """Risk bands, highest first, from red to green."""
    return {b: to_hex(RISK(i / max(len(bands) - 1, 1))) for i, b in enumerate(bands)}


def band_order(configured: list[str], found: set[str | None]) -> list[str]:
    """The bands found, in the configured order (highest first), unknown ones after it."""
    names = {f or "(none)" for f in found}
    return [b for b in configured if b in names] + sorted(names - set(configured))


# ---------------------------------------------------------------- plots: matplotlib figures to inline markup

def _text(value: object) -> str:
    """Customer text for matplotlib: a '$' would start mathtext (and fail on an odd count)."""
    return str(value).replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    """A figure outside pyplot; draw it inside matplotlib.rc_context(STYLE) (run_report_page does)."""
    return Figure(figsize=(width, height), layout="constrained")


_TAG = re.compile(r"<[^>]*>")          # matplotlib escapes every < of a text, so each match is a real tag
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)')
_ACTIVE = re.compile(r"^<(script|foreignobject)\b|\son\w+\s*=", re.I)   # a script or an event handler in a tag


def svg_markup(fig: Figure, name: str) -> Markup:
    """The figure as an inline <svg> whose ids are prefixed by name (several plots share one page), or as a PNG
    when the SVG is too big."""
    with matplotlib.rc_context(STYLE):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = re.sub(r"<!--.*?-->", "", svg[svg.index("<svg"):], flags=re.S)
    svg = _TAG.sub(lambda tag: _ID_REF.sub(lambda m: f"{m.group(1)}{name}-", tag.group(0)), svg)
    if any(_ACTIVE.search(tag) for tag in _TAG.findall(svg)):   # never from matplotlib: refuse rather than embed
        raise ValueError(f"plot {name}: active content in the SVG")
    if len(svg) <= MAX_SVG_CHARS:
        return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{name}" ', 1))
    with matplotlib.rc_context(STYLE):
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
    return png_markup(png.getvalue(), name)


def png_markup(data: bytes, name: str) -> Markup:
    return Markup(f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')


def _bars(ax, labels: list[str], values: list[float], horizontal: bool = False) -> None:
    positions = list(range(len(labels)))
    if horizontal:
        ax.barh(positions, values, color=PRIMARY, height=0.7)
        ax.set_yticks(positions, [_text(v) for v in labels])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for p, v in zip(positions, values, strict=True):
            ax.annotate(f"{v:,.0f}", (v, p), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    else:
        ax.bar(positions, values, color=PRIMARY)
        ax.set_xticks(positions, [_text(v) for v in labels])
        ax.grid(axis="x", visible=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
