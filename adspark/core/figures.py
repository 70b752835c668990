"""The report's figures with plotly: plain arrays in, ``plotly.graph_objects.Figure`` out (no Spark).

Every figure zooms (drag a box, double-click to reset); the time series also carry a range
slider. Legends sit under the plot, never over the title. Histograms are binned here with numpy,
so a figure holds ``bins`` bars whatever the number of scores (a night of 10M windows stays a few
kilobytes in the report). Each trace is named: tests and readers find a series by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
BAR = "#9ecae1"
WIDTH, HEIGHT = 520, 340


@dataclass(frozen=True)
class Line:
    """One line of a figure.

    Attributes:
        name: Legend entry.
        x: Positions, shape (n,): numbers or ``datetime64``.
        y: Values, shape (n,); non-finite values leave a gap.
        color: Index into :data:`COLORS`.
        dashed: Dashed line (a reconstruction, a reference).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    color: int = 0
    dashed: bool = False


def _gaps(y: np.ndarray) -> np.ndarray:
    """Values as an object array with None where they are not finite (plotly draws a gap)."""
    v = np.asarray(y, float)
    out = v.astype(object)
    out[~np.isfinite(v)] = None
    return out


def _layout(fig: go.Figure, title: str, xlabel: str, ylabel: str, log_y: bool = False) -> go.Figure:
    fig.update_layout(
        template="plotly_white", width=WIDTH, height=HEIGHT, title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14}},
        margin={"l": 64, "r": 16, "t": 40, "b": 40}, hovermode="x unified",
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0, "font": {"size": 10}},
        xaxis_title=xlabel, yaxis_title=ylabel,
    )
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power", dtick=1)
    return fig


def line_figure(
    title: str, lines: Sequence[Line], xlabel: str, ylabel: str,
    hlines: Sequence[tuple[str, float, int]] = (), spans: Sequence[tuple[object, object, str]] = (),
    range_slider: bool = False,
) -> go.Figure:
    """Lines over a shared x axis, horizontal reference lines and shaded x spans.

    Args:
        title: Figure title.
        lines: The lines.
        xlabel: X axis title.
        ylabel: Y axis title.
        hlines: (name, y, colour index) horizontal lines across the figure (e.g. the threshold).
        spans: (x0, x1, name) shaded spans (e.g. the anomaly interval).
        range_slider: A range slider under a time axis (zoom on a long series).
    """
    fig = go.Figure()
    xs = [np.asarray(s.x) for s in lines if len(s.x)]
    for s in lines:
        fig.add_trace(go.Scatter(
            x=np.asarray(s.x), y=_gaps(s.y), mode="lines", name=s.name,
            line={"color": COLORS[s.color % len(COLORS)], "width": 2, "dash": "dash" if s.dashed else "solid"},
        ))
    if hlines and xs:
        lo, hi = min(x.min() for x in xs), max(x.max() for x in xs)
        for name, y, color in hlines:
            fig.add_trace(go.Scatter(x=[lo, hi], y=[y, y], mode="lines", name=name, hoverinfo="name+y",
                                     line={"color": COLORS[color % len(COLORS)], "width": 1.5, "dash": "dash"}))
    for x0, x1, name in spans:
        fig.add_vrect(x0=x0, x1=x1, fillcolor=COLORS[1], opacity=0.12, line_width=0, name=name, showlegend=True,
                      layer="below")
    _layout(fig, title, xlabel, ylabel)
    if range_slider:
        fig.update_xaxes(rangeslider={"visible": True, "thickness": 0.08})
        fig.update_layout(height=HEIGHT + 40, legend_y=-0.42)
    return fig


def histogram_figure(
    title: str, values: np.ndarray, xlabel: str, bins: int = 40,
    markers: Sequence[tuple[str, float, int]] = (), density: tuple[np.ndarray, np.ndarray] | None = None,
    density_name: str = "fitted", log_y: bool = True,
) -> go.Figure:
    """Share of values per bin, with vertical markers and an optional density curve.

    Args:
        title: Figure title.
        values: The values, shape (n,); non-finite ones are left out.
        xlabel: X axis title.
        bins: Number of bins.
        markers: (name, x, colour index) vertical lines (the threshold, this interval's peak).
        density: Optional (x, density) curve, each shape (k,), drawn as a share per bin width.
        density_name: Legend entry of the curve.
        log_y: Logarithmic share axis (long tails).
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo = min([float(v.min()) if v.size else 0.0] + [m[1] for m in markers])
    hi = max([float(v.max()) if v.size else 1.0] + [m[1] for m in markers])
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
    share = counts / max(v.size, 1)
    fig = go.Figure(go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=_gaps(np.where(share > 0, share, np.nan)), width=np.diff(edges) * 0.95,
        name="share of windows", marker_color=BAR, hovertemplate="%{x:.4g}: %{y:.3%}<extra></extra>",
    ))
    floor = float(share[share > 0].min()) / 2 if (share > 0).any() else 1e-6
    top = float(share.max()) if share.size else 1.0
    if density is not None:
        cx, cy = (np.asarray(a, float) for a in density)
        keep = (cx >= edges[0]) & (cx <= edges[-1]) & np.isfinite(cy) & (cy > 0)
        curve = cy[keep] * (edges[1] - edges[0])
        fig.add_trace(go.Scatter(x=cx[keep], y=curve, mode="lines", name=density_name,
                                 line={"color": COLORS[2], "width": 2}))
        top = max([top, *curve.tolist()])
    for name, x, color in markers:
        fig.add_trace(go.Scatter(x=[x, x], y=[floor, top * 1.2], mode="lines", name=name, hoverinfo="name+x",
                                 line={"color": COLORS[color % len(COLORS)], "width": 2, "dash": "dash"}))
    fig.update_layout(bargap=0)
    return _layout(fig, title, xlabel, "share of windows", log_y=log_y)


def quantile_density(quantiles: Sequence[float], levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """A density curve from a distribution's quantiles (e.g. the validation scores').

    Args:
        quantiles: Values at ``levels``, shape (k,), non-decreasing.
        levels: Probability levels in [0, 1], shape (k,).

    Returns:
        (x at the midpoints of distinct quantiles, density there), each shape (m,), m <= k - 1.
    """
    q = np.asarray(quantiles, float)
    p = np.asarray(levels, float)
    dq, dp = np.diff(q), np.diff(p)
    ok = dq > 0
    centres = (q[:-1] + q[1:])[ok] / 2
    return centres, dp[ok] / dq[ok]
