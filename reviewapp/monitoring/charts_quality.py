"""Reviewer-quality charts (issue 20): one horizontal bar per reviewer, drawn like the dashboard's
charts (reviewapp.monitoring.charts: matplotlib's object API to inline SVG, cached by data)."""

from __future__ import annotations

from django.utils.safestring import SafeString

from reviewapp.monitoring.charts import COLORS, MUTED, _figure, _style, cached_svg


def reviewer_bars(
    *,
    name: str,
    title: str,
    bars: list[tuple[str, float | None, str]],
    limits: tuple[float, float] | None = None,
    bar_line: float | None = None,
) -> SafeString:
    """One bar per reviewer (name, value, text written at the bar's end); None draws no bar.

    ``bar_line`` marks a threshold (the project's quality bar) as a dashed red line; bars below
    it are drawn red.
    """
    data = [bars, limits, bar_line]

    def draw():
        height = 0.9 + 0.32 * max(len(bars), 1)
        figure, axes = _figure(height=height, left=1.2, right=0.6, top=0.3, bottom=0.35)
        rows = list(range(len(bars)))[::-1]
        values = [value or 0.0 for _, value, _ in bars]
        colors = [
            COLORS["bad"]
            if bar_line is not None and v is not None and v < bar_line
            else COLORS["main"]
            for _, v, _ in bars
        ]
        axes.barh(rows, values, color=colors, height=0.6)
        axes.set_yticks(rows, [who for who, _, _ in bars], fontsize=8)
        for row, value, (_, raw, text) in zip(rows, values, bars, strict=True):
            axes.text(
                value,
                row,
                f" {text if raw is not None else '—'}",
                va="center",
                fontsize=8,
                color=MUTED,
            )
        if limits is not None:
            axes.set_xlim(*limits)
        if bar_line is not None:
            axes.axvline(bar_line, color=COLORS["bad"], linestyle="--", linewidth=1)
        _style(axes, title)
        return figure

    return cached_svg(name, data, draw)
