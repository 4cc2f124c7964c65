"""The dashboard's charts, drawn on the server as SVG strings to inline in the HTML page.

Server-side, because the pages load nothing from the internet (no charting script from a CDN) and a
chart is then as auditable as the figures it draws. matplotlib's object API (a `Figure` of its own,
never pyplot's global figures) keeps one request's chart out of another's; rcParams, however, are
global, so the few this module needs are set inside `rc_context` under a lock, one chart at a time.

The axes are placed by measuring the few texts around them (tick labels, legend, title) rather than
by matplotlib's constrained layout, which draws the whole figure twice: a chart renders in half the time.

Text stays text (`svg.fonttype = "none"`): the browser draws the Chinese labels with its own fonts,
no glyph outlines are embedded (a chart stays a few tens of KB), and screen readers and tests can read
every label. The server's fonts only size the layout; when none has the CJK glyphs (DejaVu Sans alone)
the boxes are slightly off, and matplotlib's "Glyph missing" warning for that is silenced below.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FuncFormatter, MaxNLocator

from hub.domain.oversight import DailyDelays, WeeklyCounts

__all__ = ["FONTS", "NO_DATA", "breaches_chart", "delays_chart", "lag_chart"]

FONTS = ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "DejaVu Sans", "sans-serif"]
NO_DATA = "无数据 (no data)"
OTHERS = "其他 (others)"
MAX_SERIES = 10  # stacked parties beyond this are summed as OTHERS: ten colours are all a reader tells apart
MAX_TICKS = 16  # date labels beyond this are thinned, so they never overlap

# The family is the generic "sans-serif" with our list as its members: the SVG then says exactly
# font-family: 'WenQuanYi Zen Hei', 'Noto Sans CJK SC', 'DejaVu Sans', sans-serif, and matplotlib picks
# the first one installed for layout without logging "Font family not found" for the others on every chart.
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": None,  # random ids: two charts inlined in one page must not share a clipPath id
    "font.family": ["sans-serif"],
    "font.sans-serif": [f for f in FONTS if f != "sans-serif"],
    "axes.unicode_minus": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_STYLES = (("-", "中位数 (median)"), ("--", "P99"))
_COLOURS = mpl.color_sequences["tab10"]
_LOCK = threading.Lock()
_TEXT = TextToPath()  # measures text as the SVG renderer does (with text kept as text)
_AXES_W, _AXES_H = 6.2, 3.0  # inches: the plotting area of the time charts, the same whatever surrounds it
_ROTATION = 35  # degrees: the date labels
_PAD = 0.12  # inches: between the outermost text and the figure's edge (measurement is not exact)
_TICK = 7.0  # points: tick length and tick-label pad (3.5 + 3.5)

# With text kept as text the server-side glyphs are never drawn; only this module's charts are concerned
# (matplotlib attributes the warning to the first caller outside itself).
warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning, module=r"hub\.web\.")

# Characters XML 1.0 cannot hold (control characters, lone surrogates, U+FFFE/U+FFFF): one in a label
# would make the whole page's SVG unparseable, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _label(text: str) -> str:
    """A label drawn as written: matplotlib would read text between two `$` as mathematics."""
    return _xml_text(text).replace("$", r"\$")


def _shown(text: str) -> str:
    return _xml_text(text).replace(r"\$", "$")


def _size(texts: Iterable[str], fontsize: str | float) -> tuple[float, float]:
    """The widest and tallest of `texts` at `fontsize`, in inches."""
    prop = FontProperties(size=fontsize)
    width = height = 0.0
    for text in texts:
        w, h, _d = _TEXT.get_text_width_height_descent(_shown(text), prop, ismath=False)
        width, height = max(width, w), max(height, h)
    return width / 72, height / 72


def _pt(size: str | float) -> float:
    return FontProperties(size=size).get_size_in_points()


@contextmanager
def _figure() -> Iterator[Figure]:
    with _LOCK, mpl.rc_context(_RC):
        yield Figure()


def _svg(fig: Figure, title: str) -> str:
    out = io.BytesIO()
    metadata = {"Title": _xml_text(title), "Date": None, "Creator": None, "Format": None, "Type": None}
    fig.savefig(out, format="svg", metadata=metadata)
    return _inline(out.getvalue().decode("utf-8"))


# matplotlib's default line style is a page-wide CSS rule (`*{...}`): inline, it would restyle every SVG
# on the page. As presentation attributes of the root they apply to this chart alone (both are inherited).
_PAGE_STYLE = '<style type="text/css">*{stroke-linejoin: round; stroke-linecap: butt}</style>'
_OWN_STYLE = ' stroke-linejoin="round" stroke-linecap="butt"'
# matplotlib names groups "figure_1", "xtick_3"...: the same in every chart, so two charts in one page would
# repeat them. Nothing refers to them (references go to hashed ids such as "p1a2b3c4d5e", random per chart).
_GROUP_ID = re.compile(r'<g id="[A-Za-z][\w.]*_\d+"')  # only in tags: text content has its "<" escaped


def _inline(svg: str) -> str:
    """The <svg> element alone, fit to inline in an HTML page among others, announced as an image.

    No XML prolog or DOCTYPE (HTML does not allow them inline), no page-wide style, no repeated ids.
    matplotlib writes the title as the element's first child `<title>`, its accessible name.
    """
    svg = svg[svg.index("<svg") :]
    end = svg.index(">")
    svg = f'{svg[:end]} role="img"{_OWN_STYLE}{svg[end:]}'
    return _GROUP_ID.sub("<g", svg.replace(_PAGE_STYLE, "", 1))


def _place(fig: Figure, ax: Axes, left: float, bottom: float, right: float, width: float, height: float) -> None:
    """Size the figure around an axes of `width` x `height` with these margins (inches), the title above it."""
    title_w, title_h = _size([ax.get_title(loc="left")], "large")
    top = _PAD + title_h + mpl.rcParams["axes.titlepad"] / 72
    right = max(right, _PAD + title_w - width)  # the title starts at the axes' left edge
    fig_w, fig_h = left + width + right, bottom + height + top
    fig.set_size_inches(fig_w, fig_h)
    ax.set_position((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))


def _frame(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(_label(title), loc="left", fontsize="large")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _label_band(label: str) -> float:
    """Room for an axis label and its pad, in inches (0 when there is none)."""
    if not label:
        return 0.0
    return _size([label], "medium")[1] + mpl.rcParams["axes.labelpad"] / 72


def _no_data(fig: Figure, ax: Axes, width: float, height: float) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, NO_DATA, transform=ax.transAxes, ha="center", va="center", fontsize="x-large", color="0.45")
    left = _PAD + _label_band(ax.get_ylabel())
    bottom = _PAD + _label_band(ax.get_xlabel())
    _place(fig, ax, left, bottom, _PAD, width, height)


def _date_axis(ax: Axes, days: Sequence[dt.date]) -> list[str]:
    """Dates as categories, one slot each (a quiet day keeps its place), labelled at most MAX_TICKS times."""
    step = max(1, -(-len(days) // MAX_TICKS))
    positions = list(range(0, len(days), step))
    labels = [days[i].isoformat() for i in positions]
    ax.set_xticks(positions, labels, rotation=_ROTATION, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(days) - 0.4)
    return labels


def _thousands() -> FuncFormatter:
    """Counts as people read them (1,234,567), never as 1.2 with an offset of 1e6."""
    return FuncFormatter(lambda value, _pos: f"{value:,.0f}")


def _tick_labels(ax: Axes, which: Literal["x", "y"]) -> list[str]:
    """The tick labels matplotlib will draw, known before drawing so the margins can fit them."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = sorted(axis.get_view_interval())
    ticks = [v for v in axis.get_major_locator()() if low - 1e-9 <= v <= high + 1e-9]
    return list(axis.get_major_formatter().format_ticks(ticks))


def _legend(ax: Axes, handles: list[Any] | None = None) -> tuple[float, float]:
    """A legend right of the axes; returns the (width, height) it needs, in inches."""
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    label_w, label_h = _size([h.get_label() for h in handles], "small")
    em = _pt("small") / 72
    rc = mpl.rcParams
    extra = (
        rc["legend.borderaxespad"] + 2 * rc["legend.borderpad"] + rc["legend.handlelength"] + rc["legend.handletextpad"]
    )
    rows = len(handles)
    height = rows * max(label_h, em) + (rows - 1) * rc["legend.labelspacing"] * em + 2 * rc["legend.borderpad"] * em
    return label_w + extra * em, height


def _time_layout(fig: Figure, ax: Axes, dates: list[str], legend: tuple[float, float]) -> None:
    """Margins for a chart over dates: y tick labels and label on the left, slanted dates below, legend right."""
    legend_w, legend_h = legend
    height = max(_AXES_H, legend_h + 0.1)
    tick_w, _ = _size(_tick_labels(ax, "y"), "medium")
    date_w, date_h = _size(dates, "medium")
    angle = math.radians(_ROTATION)
    below = date_w * math.sin(angle) + date_h * math.cos(angle)
    # The first date, anchored at its tick, reaches left of the axes by this much.
    first_reach = date_w * math.cos(angle) - 0.6 / (ax.get_xlim()[1] + 0.6) * _AXES_W
    left = _PAD + max(_label_band(ax.get_ylabel()) + tick_w + _TICK / 72, first_reach)
    bottom = _PAD + _label_band(ax.get_xlabel()) + below + _TICK / 72
    right = 0.01 * _AXES_W + legend_w + _PAD
    _place(fig, ax, left, bottom, right, _AXES_W, height)


def _series(data: WeeklyCounts) -> list[tuple[str, list[int]]]:
    """The parties to stack: all of them, or the MAX_SERIES - 1 with most breaches and the rest as OTHERS."""
    series = [(p, data.counts[p]) for p in data.parties]
    if len(series) <= MAX_SERIES:
        return series
    ranked = sorted(series, key=lambda s: (-sum(s[1]), s[0]))
    kept = {p for p, _ in ranked[: MAX_SERIES - 1]}
    others = [sum(week) for week in zip(*(c for p, c in series if p not in kept), strict=True)]
    return [s for s in series if s[0] in kept] + [(OTHERS, others)]


def breaches_chart(data: WeeklyCounts, title: str) -> str:
    """Breaches per week, stacked by party: which parties breach, and whether it is getting better."""
    with _figure() as fig:
        ax = fig.add_axes((0, 0, 1, 1))
        _frame(ax, title, "周 (week starting)", "违规数 (breaches)")
        if not data.weeks or not data.parties:
            _no_data(fig, ax, _AXES_W, _AXES_H)
            return _svg(fig, title)
        bottom = [0] * len(data.weeks)
        for i, (party, counts) in enumerate(_series(data)):
            # One collection per party rather than ax.bar's artist per bar: the same picture, drawn faster.
            boxes = [
                [(x - 0.4, low), (x + 0.4, low), (x + 0.4, low + n), (x - 0.4, low + n)]
                for x, (low, n) in enumerate(zip(bottom, counts, strict=True))
                if n
            ]
            colour = _COLOURS[i % len(_COLOURS)]
            ax.add_collection(
                PolyCollection(boxes, facecolors=colour, linewidths=0, label=_label(party)), autolim=False
            )
            bottom = [low + n for low, n in zip(bottom, counts, strict=True)]
        dates = _date_axis(ax, data.weeks)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(_thousands())
        ax.set_ylim(0, max(1.0, max(bottom) * 1.05))
        _time_layout(fig, ax, dates, _legend(ax))
        return _svg(fig, title)


_UNITS = ((3600.0, "小时 (hours)"), (60.0, "分钟 (minutes)"), (1.0, "秒 (seconds)"))


def _unit(data: DailyDelays) -> tuple[float, str]:
    """Hours, minutes or seconds: the largest unit in which the slowest answer is at least 1."""
    worst = max((v for a in data.agencies for v in data.p99[a] if v is not None), default=0.0)
    return next(((size, name) for size, name in _UNITS if worst >= size), _UNITS[-1])


def _in(values: Sequence[float | None], unit: float) -> list[float]:
    return [np.nan if v is None else v / unit for v in values]  # NaN: no point, a gap in the line


def _isolated(values: list[float], i: int) -> bool:
    def missing(j: int) -> bool:
        return not 0 <= j < len(values) or math.isnan(values[j])

    return not missing(i) and missing(i - 1) and missing(i + 1)


def delays_chart(data: DailyDelays, title: str) -> str:
    """Per agency, the median (solid) and 99th percentile (dashed) answer delay per day, in hours (or minutes, or
    seconds, when every answer came faster than that)."""
    unit, unit_label = _unit(data)
    with _figure() as fig:
        ax = fig.add_axes((0, 0, 1, 1))
        _frame(ax, title, "日期 (day)", unit_label)
        if not data.days or not any(v is not None for a in data.agencies for v in data.median[a]):
            _no_data(fig, ax, _AXES_W, _AXES_H)
            return _svg(fig, title)
        x = np.arange(len(data.days))
        for i, agency in enumerate(data.agencies):
            colour = _COLOURS[i % len(_COLOURS)]
            for values, style, label in ((data.median, "-", _label(agency)), (data.p99, "--", None)):
                hours = _in(values[agency], unit)
                ax.plot(x, hours, style, color=colour, label=label)
                # A day with answers between two without would draw no line: it gets a dot.
                alone = [day for day in range(len(hours)) if _isolated(hours, day)]
                if alone:
                    ax.plot(alone, [hours[day] for day in alone], "o", color=colour, markersize=3)
        # The legend names each agency by its colour, then says which line style is which figure.
        styles = [Line2D([], [], color="0.3", linestyle=style, label=label) for style, label in _STYLES]
        dates = _date_axis(ax, data.days)
        ax.set_ylim(bottom=0)
        _time_layout(fig, ax, dates, _legend(ax, ax.get_legend_handles_labels()[0] + styles))
        return _svg(fig, title)


def lag_chart(lags: dict[str, int], title: str) -> str:
    """Records each consumer has yet to process, one bar each in the given order, with its number."""
    with _figure() as fig:
        ax = fig.add_axes((0, 0, 1, 1))
        _frame(ax, title, "未处理记录数 (records behind)", "")
        width, height = 5.0, max(1.2, 0.45 * len(lags))
        if not lags:
            _no_data(fig, ax, width, height)
            return _svg(fig, title)
        names = [_label(name) for name in lags]
        values = list(lags.values())
        bars = ax.barh(np.arange(len(values)), values, 0.6, color=_COLOURS[0])
        ax.set_yticks(np.arange(len(values)), names)
        ax.invert_yaxis()  # the first consumer on top
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.xaxis.set_major_formatter(_thousands())
        ax.set_xlim(min(0, *values) * 1.15, max(1, *values) * 1.15)  # room for the labels beyond the bars
        tick_w, tick_h = _size(_tick_labels(ax, "x"), "medium")
        left = _PAD + _size(names, "medium")[0] + _TICK / 72
        bottom = _PAD + _label_band(ax.get_xlabel()) + tick_h + _TICK / 72
        _place(fig, ax, left, bottom, _PAD + tick_w, width, height)  # the last tick label overhangs
        return _svg(fig, title)
