"""Server-side charts for the dashboard: matplotlib (Agg, object API) drawn to inline SVG.

Only the object API is used (``Figure``, no pyplot), so no GUI backend ever loads. Each chart
is cached by a hash of exactly the data it draws, so an unchanged project costs no drawing at
all, and a changed one is never shown stale. Text stays text (``svg.fonttype: none``) so the
browser and the tests can read it; each chart's ids get their own prefix so several inline SVGs
on one page never share an id (clip paths would mix).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import matplotlib
from django.core.cache import cache
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from matplotlib import dates
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

CACHE_SECONDS = 600
COLORS = {"main": "#1f6feb", "second": "#8250df", "bad": "#b42318", "ok": "#17803d"}
MUTED = "#5d6778"
_HEAD = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)  # the page's CSP allows no <style>
# Ids and the references to them, so several inline SVGs on one page never share an id.
_REFERENCE = re.compile(r'(\bid="|url\(#|xlink:href="#)([^")]+)')


def _figure(
    width: float = 5.6,
    height: float = 2.4,
    *,
    left: float = 0.45,
    right: float = 0.15,
    top: float = 0.3,
    bottom: float = 0.35,
):
    """A figure with fixed margins in inches (a layout engine would double the drawing time)."""

    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
    )
    return figure, figure.add_subplot()


def _style(axes, title: str) -> None:
    axes.set_title(title, fontsize=10, loc="left", color="#1d2430")
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8, colors=MUTED)
    axes.grid(axis="y", color="#e5e8ec", linewidth=0.6)


def _time_axis(axes, times: Sequence[datetime], bucket: str) -> None:

    tz = timezone.get_current_timezone()  # ticks in the display time zone, not matplotlib's UTC
    axes.xaxis.set_major_locator(dates.AutoDateLocator(maxticks=6, tz=tz))
    axes.xaxis.set_major_formatter(
        dates.DateFormatter("%H:%M" if bucket == "hour" else "%b %d", tz=tz)
    )
    if len(times) == 1:  # one bucket: give the point some room
        step = 1 / 24 if bucket == "hour" else 1
        at = dates.date2num(times[0])
        axes.set_xlim(at - step, at + step)


def _render(figure, prefix: str) -> str:
    """SVG markup without the XML header and <style>, every id (and reference) prefixed."""

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    svg = _STYLE.sub("", _HEAD.sub("", buffer.getvalue(), count=1))
    return _REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)


def cached_svg(name: str, data: Any, draw: Callable[[], Any]) -> SafeString:
    """The chart ``draw()`` makes for ``data``, as inline SVG, cached by the data's hash."""
    digest = hashlib.sha256(
        json.dumps([name, data], sort_keys=True, default=str).encode()
    ).hexdigest()[:32]
    key = f"chart:{name}:{digest}"
    svg = cache.get(key)
    if svg is None:
        svg = _render(draw(), prefix=f"{name}-{digest[:8]}")
        cache.set(key, svg, CACHE_SECONDS)
    # Safe: matplotlib escapes every text it writes; the markup is its own.
    return mark_safe(f'<figure class="chart" data-chart="{name}">{svg}</figure>')  # noqa: S308


def rate_chart(
    *,
    name: str,
    title: str,
    bucket: str,
    series: dict[str, list],
    target: float | None = None,
    ylabel: str = "",
) -> SafeString:
    """Rates over time, each with its Wilson interval as a band; an optional target line."""
    data = {
        label: [(p.at.isoformat(), p.k, p.n, p.low, p.high) for p in points]
        for label, points in series.items()
    }

    def draw():
        figure, axes = _figure()
        palette = [COLORS["main"], COLORS["second"], COLORS["ok"]]
        for color, (label, points) in zip(palette, series.items(), strict=False):
            shown = [p for p in points if p.n]
            if not shown:
                continue
            times = [p.at for p in shown]
            axes.fill_between(
                times, [p.low for p in shown], [p.high for p in shown], color=color, alpha=0.15
            )
            axes.plot(
                times,
                [p.rate for p in shown],
                marker="o",
                markersize=3,
                color=color,
                linewidth=1.5,
                label=f"{label} (n={sum(p.n for p in shown):.0f})",
            )
        if target is not None:
            axes.axhline(
                target,
                color=COLORS["bad"],
                linestyle="--",
                linewidth=1,
                label=f"target {target:.0%}",
            )
        all_points = [p for points in series.values() for p in points]
        _time_axis(axes, [p.at for p in all_points if p.n] or [all_points[0].at], bucket)
        axes.set_ylim(-0.02, 1.02)
        axes.set_ylabel(ylabel, fontsize=8, color=MUTED)
        _style(axes, title)
        axes.legend(fontsize=7, frameon=False, loc="lower left")
        return figure

    return cached_svg(name, [title, bucket, data, target], draw)


def count_chart(
    *, name: str, title: str, bucket: str, points: list, label: str, other: str = ""
) -> SafeString:
    """Counts over time as bars (``other``, when named, as a line on a second axis)."""
    data = [(p.at.isoformat(), p.value, p.other) for p in points]

    def draw():
        figure, axes = _figure(right=0.4 if other else 0.15)
        times = [p.at for p in points]
        width = (1 / 24 if bucket == "hour" else 1) * 0.8
        axes.bar(times, [p.value for p in points], width=width, color=COLORS["main"], label=label)
        if other:
            twin = axes.twinx()
            twin.plot(
                times,
                [p.other for p in points],
                color=COLORS["second"],
                marker="o",
                markersize=3,
                linewidth=1.2,
                label=other,
            )
            twin.tick_params(labelsize=8, colors=COLORS["second"])
            twin.set_ylim(bottom=0)
            twin.spines[["top"]].set_visible(False)
            twin.yaxis.get_major_locator().set_params(integer=True)
            twin.legend(fontsize=7, frameon=False, loc="upper right")
        _time_axis(axes, times, bucket)
        axes.set_ylim(bottom=0)
        axes.yaxis.get_major_locator().set_params(integer=True)
        _style(axes, title)
        axes.legend(fontsize=7, frameon=False, loc="upper left")
        return figure

    return cached_svg(name, [title, bucket, data, label, other], draw)


def confusion_chart(*, labels: list[str], matrix: list[list[int]], title: str) -> SafeString:
    """A confusion matrix as a heat map: reviewer's label down, the model's across."""

    def draw():
        figure, axes = _figure(width=4.2, height=3.8, left=0.6, bottom=0.55)
        peak = max((max(row) for row in matrix), default=0) or 1
        axes.imshow(matrix, cmap="Blues", vmin=0, vmax=peak)
        ticks = range(len(labels))
        axes.set_xticks(ticks, labels, fontsize=8)
        axes.set_yticks(ticks, labels, fontsize=8)
        axes.set_xlabel("model said", fontsize=8, color=MUTED)
        axes.set_ylabel("reviewer decided", fontsize=8, color=MUTED)
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                if n:
                    axes.text(
                        j,
                        i,
                        str(n),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if n > peak / 2 else "#1d2430",
                    )
        axes.set_title(title, fontsize=10, loc="left")
        return figure

    return cached_svg("confusion", [labels, matrix, title], draw)


def gate_chart(*, lines: list, title: str) -> SafeString:
    """Each class's blind agreement (bar) against 1 - ε (tick); green once certified."""
    data = [
        (line.scope, line.n, line.agreed, line.agreement or 0.0, line.target, line.passed)
        for line in lines
    ]

    def draw():
        figure, axes = _figure(
            width=5.6, height=0.65 + 0.22 * max(len(lines), 1), left=0.65, right=0.5
        )
        names = [line.scope for line in lines]
        colors = [COLORS["ok"] if line.passed else COLORS["bad"] for line in lines]
        axes.barh(names, [line.agreement or 0.0 for line in lines], color=colors, height=0.6)
        for y, line in enumerate(lines):
            axes.plot([line.target, line.target], [y - 0.4, y + 0.4], color="#1d2430", lw=1.2)
            axes.text(1.01, y, f"{line.agreed}/{line.n}", va="center", fontsize=7, color=MUTED)
        axes.set_xlim(0, 1)
        axes.invert_yaxis()
        _style(axes, title)
        axes.grid(axis="x", color="#e5e8ec", linewidth=0.6)
        return figure

    return cached_svg("gate", [title, data], draw)


def _drift_scale(check, p_value_based: bool) -> tuple[float, float]:
    """(plotted value, plotted threshold): -log10 p against -log10 alpha for p-value tests."""
    if not p_value_based:
        return check.value, check.threshold
    return -math.log10(max(check.p_value, 1e-300)), -math.log10(max(check.threshold, 1e-300))


def drift_chart(
    *, name: str, title: str, checks: list, onsets: list[tuple[datetime, bool]]
) -> SafeString:
    """A drift statistic over time against its alarm threshold; alarming windows and onsets.

    P-value tests are drawn as -log10(p) ("evidence of drift"), so for every statistic the line
    rising above the dashed threshold is an alarm.
    """
    p_value_based = bool(checks) and all(c.p_value is not None for c in checks)
    data = [(c.window_end.isoformat(), c.value, c.p_value, c.threshold, c.alarming) for c in checks]
    onset_data = [(at.isoformat(), is_open) for at, is_open in onsets]

    def draw():

        figure, axes = _figure(width=5.2, height=2.1, bottom=0.45)
        times = [c.window_end for c in checks]
        scaled = [_drift_scale(c, p_value_based) for c in checks]
        axes.plot(
            times,
            [v for v, _ in scaled],
            color=COLORS["main"],
            linewidth=1.4,
            label="-log10 p" if p_value_based else "statistic",
        )
        axes.step(
            times,
            [t for _, t in scaled],
            where="post",
            color=COLORS["bad"],
            linestyle="--",
            linewidth=1,
            label="alarm threshold",
        )
        alarming = [
            (t, v) for t, (v, _), c in zip(times, scaled, checks, strict=True) if c.alarming
        ]
        if alarming:
            axes.scatter(
                *zip(*alarming, strict=True),
                color=COLORS["bad"],
                s=12,
                zorder=3,
                label="alarming window",
            )
        for at, is_open in onsets:
            color = COLORS["bad"] if is_open else MUTED
            axes.axvline(at, color=color, linewidth=1.2, alpha=0.8)
            axes.annotate(
                "onset" if is_open else "onset (cleared)",
                (at, 1),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color=color,
                xytext=(3, -10),
                textcoords="offset points",
            )
        locator = dates.AutoDateLocator(maxticks=6, tz=timezone.get_current_timezone())
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(
            dates.ConciseDateFormatter(locator, tz=timezone.get_current_timezone())
        )
        peak = max([v for v, _ in scaled] + [t for _, t in scaled] + [1e-9])
        axes.set_ylim(0, peak * 1.4)  # headroom for the legend above the lines
        _style(axes, title)
        axes.legend(fontsize=7, frameon=False, loc="upper left", ncols=3)
        return figure

    return cached_svg(name, [title, data, onset_data], draw)
