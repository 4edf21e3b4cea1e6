"""Small SVG charts, drawn by hand so a page needs no script library and no CDN.

Each function returns one ``<svg>`` element as a string; labels are escaped.
"""

from __future__ import annotations

import math
from html import escape

_DEFAULT_COLOUR = "#5c6bc0"


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def bar_chart(items: list[tuple[str, float, str | None]], *, width: int = 560, bar: int = 22,
              label_width: int = 230, unit: str = "", css_class: str = "chart") -> str:
    """Horizontal bars: one (label, value, colour or None) per row, in the order given."""
    if not items:
        return f'<svg class="{css_class} empty" viewBox="0 0 {width} 40"><text x="8" y="24">no data yet</text></svg>'
    height = len(items) * (bar + 6) + 8
    top = max(value for _, value, _ in items) or 1
    span = width - label_width - 70
    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * (bar + 6)
        length = max(1.0, span * value / top)
        out.append(
            f'<text class="axis" x="{label_width - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar}" rx="4" fill="{colour or _DEFAULT_COLOUR}">'
            f"<title>{escape(label)}: {_fmt(value)}{escape(unit)}</title></rect>"
            f'<text class="value" x="{label_width + length + 6:.1f}" y="{y + bar * 0.7:.1f}">{_fmt(value)}{escape(unit)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def histogram(values: list[float], *, bins: int = 12, width: int = 560, height: int = 200,
              unit: str = "", colour: str = _DEFAULT_COLOUR, css_class: str = "chart") -> str:
    """Vertical bars counting ``values`` in ``bins`` equal ranges from the least to the most."""
    if not values:
        return f'<svg class="{css_class} empty" viewBox="0 0 {width} 40"><text x="8" y="24">no data yet</text></svg>'
    low, high = min(values), max(values)
    step = (high - low) / bins if high > low else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / step), bins - 1)] += 1
    edges = [(low + i * step, low + (i + 1) * step) for i in range(bins)]
    labels = [f"{_fmt(a)}-{_fmt(b)}{unit}" for a, b in edges]
    return columns(list(zip(labels, counts)), width=width, height=height, colour=colour, css_class=css_class,
                   every=max(1, bins // 4), first_last=(f"{_fmt(low)}{unit}", f"{_fmt(high)}{unit}"))


def columns(items: list[tuple[str, float]], *, width: int = 560, height: int = 200, colour: str = _DEFAULT_COLOUR,
            css_class: str = "chart", every: int = 1, first_last: tuple[str, str] | None = None) -> str:
    """Vertical bars, one per (label, value); every ``every``-th label is written under its bar."""
    if not items:
        return f'<svg class="{css_class} empty" viewBox="0 0 {width} 40"><text x="8" y="24">no data yet</text></svg>'
    left, bottom, top_pad = 36, 22, 10
    plot_h = height - bottom - top_pad
    top = max(value for _, value in items) or 1
    top = _nice_ceiling(top)
    slot = (width - left - 4) / len(items)
    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           f'<line class="grid" x1="{left}" y1="{top_pad + plot_h}" x2="{width - 4}" y2="{top_pad + plot_h}"/>',
           f'<text class="axis" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">{_fmt(top)}</text>',
           f'<text class="axis" x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>']
    for i, (label, value) in enumerate(items):
        h = plot_h * value / top
        x = left + i * slot + 1
        out.append(f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
                   f'rx="2" fill="{colour}"><title>{escape(label)}: {_fmt(value)}</title></rect>')
        if first_last is None and i % every == 0:
            out.append(f'<text class="axis" x="{x + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>')
    if first_last is not None:
        out.append(f'<text class="axis" x="{left}" y="{height - 6}">{escape(first_last[0])}</text>'
                   f'<text class="axis" x="{width - 4}" y="{height - 6}" text-anchor="end">{escape(first_last[1])}</text>')
    out.append("</svg>")
    return "".join(out)


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``."""
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power
