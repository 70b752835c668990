"""Inline SVG charts for the HTML report: pure Python + numpy, no JavaScript, no network.

Every function returns one ``<svg>`` element as a string; lines, bars and markers carry a
``data-series`` attribute naming what they draw (so tests and screen readers can find them).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

import numpy as np

W, H = 520, 240
PAD_L, PAD_R, PAD_T, PAD_B = 56, 14, 26, 38
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    """One line of a line chart: x and y of the same length, a name and a colour index."""

    name: str
    x: np.ndarray
    y: np.ndarray
    color: int = 0
    dashed: bool = False


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.3g}"


class _Frame:
    """Maps data coordinates to the plot area."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        if x1 <= x0:
            x0, x1 = x0 - 0.5, x0 + 0.5
        if y1 <= y0:
            y0, y1 = y0 - 0.5, y0 + 0.5
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def px(self, x: np.ndarray | float) -> np.ndarray:
        return PAD_L + (np.asarray(x, float) - self.x0) / (self.x1 - self.x0) * (W - PAD_L - PAD_R)

    def py(self, y: np.ndarray | float) -> np.ndarray:
        return H - PAD_B - (np.asarray(y, float) - self.y0) / (self.y1 - self.y0) * (H - PAD_T - PAD_B)


def _axes(f: _Frame, title: str, xlabel: str, ylabel: str, xticks: Sequence[tuple[float, str]] | None = None) -> list[str]:
    out = [
        f'<text x="{W / 2}" y="16" text-anchor="middle" class="t">{_esc(title)}</text>',
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="ax"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" class="ax"/>',
        f'<text x="{W / 2}" y="{H - 4}" text-anchor="middle" class="l">{_esc(xlabel)}</text>',
        f'<text x="12" y="{H / 2}" text-anchor="middle" class="l" transform="rotate(-90 12 {H / 2})">'
        f"{_esc(ylabel)}</text>",
    ]
    for v in np.linspace(f.y0, f.y1, 5):
        y = float(f.py(v))
        out.append(f'<line x1="{PAD_L - 4}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" class="g"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="k">{_fmt(v)}</text>')
    ticks = xticks if xticks is not None else [(v, _fmt(v)) for v in np.linspace(f.x0, f.x1, 5)]
    for v, label in ticks:
        x = float(f.px(v))
        out.append(f'<text x="{x:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" class="k">{_esc(label)}</text>')
    return out


def _svg(parts: list[str], kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'class="chart" data-chart="{kind}">' + "".join(parts) + "</svg>")


def _legend(names: Sequence[tuple[str, int, bool]]) -> list[str]:
    out = []
    for i, (name, color, dashed) in enumerate(names):
        x = PAD_L + 8 + 150 * (i % 3)
        y = PAD_T + 10 + 14 * (i // 3)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 16}" y2="{y - 4}" stroke="{COLORS[color % 6]}" '
                   f'stroke-width="2"{dash}/><text x="{x + 20}" y="{y}" class="k">{_esc(name)}</text>')
    return out


def line_chart(
    title: str, series: Sequence[Series], xlabel: str, ylabel: str,
    hlines: Sequence[tuple[str, float, int]] = (), spans: Sequence[tuple[float, float, str]] = (),
    xticks: Sequence[tuple[float, str]] | None = None, kind: str = "line",
) -> str:
    """Lines over a shared x axis, horizontal reference lines and shaded x spans.

    Args:
        title: Chart title.
        series: The lines.
        xlabel: X axis label.
        ylabel: Y axis label.
        hlines: (name, y, colour index) horizontal lines (e.g. the threshold).
        spans: (x0, x1, name) shaded spans (e.g. the anomaly interval).
        xticks: Optional (x, label) ticks (e.g. dates).
        kind: ``data-chart`` attribute value.
    """
    xs = [s.x for s in series if len(s.x)]
    ys = [s.y[np.isfinite(s.y)] for s in series if len(s.y)] + [np.array([h[1] for h in hlines], float)]
    ally = np.concatenate(ys) if ys else np.array([0.0, 1.0])
    allx = np.concatenate(xs) if xs else np.array([0.0, 1.0])
    pad = 0.05 * (ally.max() - ally.min() if ally.size and ally.max() > ally.min() else 1.0)
    f = _Frame(float(allx.min()), float(allx.max()), float(ally.min() - pad), float(ally.max() + pad))
    parts = _axes(f, title, xlabel, ylabel, xticks)
    for x0, x1, name in spans:
        a, b = float(f.px(x0)), float(f.px(x1))
        parts.append(f'<rect x="{min(a, b):.1f}" y="{PAD_T}" width="{abs(b - a):.1f}" height="{H - PAD_T - PAD_B}" '
                     f'class="span" data-series="{_esc(name)}"/>')
    for s in series:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(f.px(s.x), f.py(s.y)) if np.isfinite(y))
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[s.color % 6]}" stroke-width="1.8"'
                     f'{dash} data-series="{_esc(s.name)}"/>')
    for name, y, color in hlines:
        yy = float(f.py(y))
        parts.append(f'<line x1="{PAD_L}" y1="{yy:.1f}" x2="{W - PAD_R}" y2="{yy:.1f}" stroke="{COLORS[color % 6]}" '
                     f'stroke-width="1.5" stroke-dasharray="6 3" data-series="{_esc(name)}"/>')
    parts += _legend([(s.name, s.color, s.dashed) for s in series] + [(n, c, True) for n, _, c in hlines])
    return _svg(parts, kind)


def histogram(
    title: str, values: np.ndarray, xlabel: str, bins: int = 40,
    markers: Sequence[tuple[str, float, int]] = (), density: tuple[np.ndarray, np.ndarray] | None = None,
    density_name: str = "fitted", log_y: bool = False,
) -> str:
    """A histogram (share of values per bin) with vertical markers and an optional density curve.

    Args:
        title: Chart title.
        values: The values, shape (n,).
        xlabel: X axis label.
        bins: Number of bins.
        markers: (name, x, colour index) vertical lines (threshold, this interval's peak).
        density: Optional (x, share per bin width) curve drawn over the bars.
        density_name: Legend of the curve.
        log_y: Log10 of the share (long tails).
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo = min([v.min() if v.size else 0.0] + [m[1] for m in markers])
    hi = max([v.max() if v.size else 1.0] + [m[1] for m in markers])
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1))
    share = counts / max(v.size, 1)

    def tr(y: np.ndarray) -> np.ndarray:
        return np.log10(np.maximum(y, 1e-6)) if log_y else y

    heights = tr(share)
    base = tr(np.array([1e-6]))[0] if log_y else 0.0
    top = max(float(heights.max()) if heights.size else 1.0, base + 1e-9)
    curve = None
    if density is not None:
        width = edges[1] - edges[0]
        curve = (np.asarray(density[0], float), tr(np.asarray(density[1], float) * width))
        top = max(top, float(np.nanmax(curve[1])) if curve[1].size else top)
    f = _Frame(float(edges[0]), float(edges[-1]), base, top * 1.08 if top > 0 else top + 0.1)
    parts = _axes(f, title, xlabel, "log10 share" if log_y else "share of windows")
    for c, a, b in zip(heights, edges[:-1], edges[1:]):
        x0, x1 = float(f.px(a)), float(f.px(b))
        y = float(f.py(c))
        parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
                     f'height="{max(float(f.py(base)) - y, 0):.1f}" class="bar" data-series="histogram"/>')
    legend = []
    if curve is not None:
        keep = (curve[0] >= edges[0]) & (curve[0] <= edges[-1]) & np.isfinite(curve[1])
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(f.px(curve[0][keep]), f.py(curve[1][keep])))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[2]}" stroke-width="2" '
                     f'data-series="{_esc(density_name)}"/>')
        legend.append((density_name, 2, False))
    for name, x, color in markers:
        xx = float(f.px(x))
        parts.append(f'<line x1="{xx:.1f}" y1="{PAD_T}" x2="{xx:.1f}" y2="{H - PAD_B}" stroke="{COLORS[color % 6]}" '
                     f'stroke-width="2" stroke-dasharray="6 3" data-series="{_esc(name)}"/>')
        legend.append((name, color, True))
    parts += _legend(legend)
    return _svg(parts, "histogram")


def quantile_density(quantiles: Sequence[float], levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """A density curve from a distribution's quantiles (e.g. the validation scores').

    Returns:
        (x at bin centres, density), each shape (k,).
    """
    q = np.asarray(quantiles, float)
    p = np.asarray(levels, float)
    dq, dp = np.diff(q), np.diff(p)
    ok = dq > 0
    centres = (q[:-1] + q[1:])[ok] / 2
    return centres, dp[ok] / dq[ok]
