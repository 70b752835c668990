"""The self-contained HTML report of a run: plain data in, one HTML string out (no Spark).

Sections: run summary and counts; score histogram with the threshold and the validation score
distribution the threshold was fitted on; ROC and PR curves when labels exist; one alert-like
panel per top anomaly interval (actual vs reconstruction for its top features at the peak window,
error over time with the threshold and the interval shaded, where the peak sits in the error
distribution, entity and model metadata). Figures are plotly (zoom, hover, a range slider on the
time series) with its JavaScript inlined once; styles are inline; nothing is fetched to view it.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from adspark.core.figures import Line, histogram_figure, line_figure, quantile_density


@dataclass(frozen=True)
class IntervalPanel:
    """What one anomaly interval's panel shows.

    Attributes:
        meta: Interval fields (interval_id, entity, start, end, peak_score, threshold, severity,
            n_windows, status, model_id, top_features, top_shares) and its feedback, if any.
        window_end: End of each of the entity's windows around the interval, datetime64, (m,).
        scores: Their scores, shape (m,).
        thresholds: Their thresholds, shape (m,).
        features: Names of the top features shown, (k,).
        actual: The peak window's scaled values of those features, shape (W, k).
        reconstruction: The model's reconstruction of them, shape (W, k).
        step_seconds: Bucket width (x axis of the window plot).
        percentile: Share of the run's windows scoring below the peak.
    """

    meta: dict
    window_end: np.ndarray
    scores: np.ndarray
    thresholds: np.ndarray
    features: tuple[str, ...]
    actual: np.ndarray
    reconstruction: np.ndarray
    step_seconds: int
    percentile: float


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, already computed."""

    title: str
    summary: dict[str, str]
    scores: np.ndarray
    threshold: float
    val_quantiles: tuple[float, ...] = ()
    quantile_levels: tuple[float, ...] = ()
    roc: dict | None = None
    panels: tuple[IntervalPanel, ...] = ()
    models: tuple[dict, ...] = ()
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.panel{background:#fff;border:1px solid #ddd;border-left:5px solid #d62728;border-radius:6px;padding:12px 16px;
margin:16px 0} .panel h3{margin:0 0 6px;font-size:16px}
table.kv{border-collapse:collapse;margin:6px 0} table.kv td{padding:2px 12px 2px 0;vertical-align:top}
table.kv td:first-child{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:8px} .chart{background:#fff;border:1px solid #eee}
.muted{color:#777}
"""


def _kv(rows: Mapping[str, object]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f'<table class="kv">{body}</table>'


def panel_figures(p: IntervalPanel, run_scores: np.ndarray) -> dict[str, go.Figure]:
    """One interval's figures: the peak window against its reconstruction, the entity's score over
    time with the threshold and the interval shaded, and where the peak sits among the run's scores.

    Args:
        p: The interval's panel data.
        run_scores: The run's scores (or a sample), shape (n,).

    Returns:
        ``{"reconstruction", "error-over-time", "peak-in-scores"}`` -> figure.
    """
    m = p.meta
    steps = np.arange(p.actual.shape[0]) * p.step_seconds / 3600.0
    lines = []
    for j, name in enumerate(p.features):
        lines.append(Line(name, steps, p.actual[:, j], j))
        lines.append(Line(f"{name} (reconstructed)", steps, p.reconstruction[:, j], j, dashed=True))
    return {
        "reconstruction": line_figure("peak window: actual vs reconstruction", lines, "hours into the window",
                                      "scaled value"),
        "error-over-time": line_figure(
            f"score by window end (UTC): {m['entity']}", [Line("score", p.window_end, p.scores, 0)], "",
            "score", hlines=[("threshold", float(np.median(p.thresholds)), 1)] if p.thresholds.size else (),
            spans=[(m["start"], m["end"], "interval")], range_slider=True,
        ),
        "peak-in-scores": histogram_figure(
            "where the peak sits in the run's scores", run_scores, "score", bins=30,
            markers=[("this interval's peak", float(m["peak_score"]), 1), ("threshold", float(m["threshold"]), 3)],
        ),
    }


def run_figures(data: ReportData) -> dict[str, go.Figure]:
    """The run's figures: the score histogram over the validation distribution, and ROC and
    precision-recall curves when labels exist.

    Returns:
        ``{"scores"[, "roc", "pr"]}`` -> figure.
    """
    density = None
    if data.val_quantiles and data.quantile_levels:
        density = quantile_density(data.val_quantiles, data.quantile_levels)
    out = {"scores": histogram_figure(
        "score distribution", data.scores, "score", markers=[("threshold", data.threshold, 1)],
        density=density, density_name="validation scores (threshold fitted on)",
    )}
    if data.roc is not None:
        c = data.roc
        out["roc"] = line_figure(
            f"ROC (AUC {c['roc_auc']:.3f})", [Line("ROC", np.r_[0, c["fpr"]], np.r_[0, c["tpr"]], 0),
                                             Line("chance", np.array([0, 1.0]), np.array([0, 1.0]), 5, True)],
            "false positive rate", "true positive rate")
        out["pr"] = line_figure(f"precision-recall (AP {c['pr_auc']:.3f})",
                                [Line("PR", c["recall"], c["precision"], 2)], "recall", "precision")
    return out


class _Embedder:
    """Writes figures into one HTML document, plotly's JavaScript inlined once (no network)."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, kind: str, fig: go.Figure) -> str:
        body = fig.to_html(full_html=False, include_plotlyjs=self.first,
                           config={"displaylogo": False, "responsive": True})
        self.first = False
        return f'<div class="chart" data-chart="{html.escape(kind)}">{body}</div>'


def _panel(p: IntervalPanel, i: int, run_scores: np.ndarray, embed: _Embedder) -> str:
    m = p.meta
    feats = ", ".join(f"{f} ({s:.0%})" for f, s in zip(m.get("top_features") or [], m.get("top_shares") or []))
    meta = {
        "interval": m["interval_id"], "entity": m["entity"], "from": m["start"], "to": m["end"],
        "windows": m.get("n_windows"), "status": m.get("status"),
        "peak score": f"{m['peak_score']:.4g} (threshold {m['threshold']:.4g}, severity {m['severity']:.2f}x)",
        "percentile of the peak": f"{p.percentile:.2%} of this run's windows score lower",
        "top features": feats, "model": m.get("model_id"), "feedback": m.get("feedback") or "not judged yet",
    }
    charts = "".join(embed(kind, fig) for kind, fig in panel_figures(p, run_scores).items())
    return (f'<div class="panel" data-interval="{html.escape(str(m["interval_id"]))}"><h3>#{i} '
            f'{html.escape(str(m["entity"]))}: severity {m["severity"]:.2f}x</h3>{_kv(meta)}'
            f'<div class="charts">{charts}</div></div>')


def render_report(data: ReportData) -> str:
    """The report as one self-contained HTML document (plotly's JavaScript inlined, nothing fetched)."""
    embed = _Embedder()
    sections = [f"<h1>{html.escape(data.title)}</h1>",
                f'<div class="muted">generated {data.generated_at:%Y-%m-%d %H:%M} UTC by adspark</div>',
                "<h2>Run summary</h2>", _kv(data.summary), "<h2>Scores</h2><div class=\"charts\">"]
    sections += [embed(kind, fig) for kind, fig in run_figures(data).items()]
    if data.roc is None:
        sections.append('<p class="muted">No labels overlap this run: ROC and PR curves need labels '
                        "(the labels table or analyst feedback).</p>")
    sections.append("</div>")
    if data.models:
        sections.append("<h2>Models</h2>" + "".join(_kv(m) for m in data.models))
    sections.append(f"<h2>Top anomaly intervals ({len(data.panels)})</h2>")
    if not data.panels:
        sections.append('<p class="muted">No anomaly interval in this run.</p>')
    for i, p in enumerate(data.panels, 1):
        sections.append(_panel(p, i, data.scores, embed))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>"
            + "".join(sections) + "</body></html>")
