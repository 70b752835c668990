"""The self-contained HTML report of a run: plain data in, one HTML string out (no Spark).

Sections: run summary and counts; score histogram with the threshold and the validation score
distribution the threshold was fitted on; ROC and PR curves when labels exist; one alert-like
panel per top anomaly interval (actual vs reconstruction for its top features at the peak window,
error over time with the threshold and the interval shaded, where the peak sits in the error
distribution, entity and model metadata). Styles are inline; nothing is fetched to view it.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field

import numpy as np

from adspark.core.charts import Series, histogram, line_chart, quantile_density


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
.charts{display:flex;flex-wrap:wrap;gap:8px}
svg.chart{background:#fff;border:1px solid #eee}
svg .t{font-size:13px;font-weight:600} svg .l{font-size:11px;fill:#444} svg .k{font-size:10px;fill:#555}
svg .ax{stroke:#888} svg .g{stroke:#eee} svg .bar{fill:#9ecae1} svg .span{fill:#d62728;opacity:.12}
.muted{color:#777}
"""


def _kv(rows: dict[str, object]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f'<table class="kv">{body}</table>'


def _time_ticks(t: np.ndarray, n: int = 4) -> list[tuple[float, str]]:
    if t.size == 0:
        return []
    secs = t.astype("datetime64[s]").astype(np.int64)
    picks = np.linspace(secs.min(), secs.max(), n)
    return [(float(p), str(np.datetime64(int(p), "s")).replace("T", " ")[5:16]) for p in picks]


def _panel(p: IntervalPanel, i: int, run_scores: np.ndarray) -> str:
    m = p.meta
    secs = p.window_end.astype("datetime64[s]").astype(np.int64).astype(float)
    start = float(np.datetime64(m["start"], "s").astype(np.int64))
    end = float(np.datetime64(m["end"], "s").astype(np.int64))
    error = line_chart(
        f"error over time: {m['entity']}", [Series("score", secs, p.scores, 0)], "window end (UTC)", "score",
        hlines=[("threshold", float(np.median(p.thresholds)), 1)] if p.thresholds.size else (),
        spans=[(start, end, "interval")], xticks=_time_ticks(p.window_end), kind="error-over-time",
    )
    steps = np.arange(p.actual.shape[0]) * p.step_seconds / 3600.0
    lines = []
    for j, name in enumerate(p.features):
        lines.append(Series(f"{name}", steps, p.actual[:, j], j))
        lines.append(Series(f"{name} (reconstructed)", steps, p.reconstruction[:, j], j, dashed=True))
    recon = line_chart("peak window: actual vs reconstruction", lines, "hours into the window", "scaled value",
                       kind="reconstruction")
    where = histogram(
        "where the peak sits in the run's scores", run_scores, "score", bins=30,
        markers=[("this interval's peak", float(m["peak_score"]), 1), ("threshold", float(m["threshold"]), 3)],
        log_y=True,
    )
    feats = ", ".join(f"{f} ({s:.0%})" for f, s in zip(m.get("top_features") or [], m.get("top_shares") or []))
    meta = {
        "interval": m["interval_id"], "entity": m["entity"], "from": m["start"], "to": m["end"],
        "windows": m.get("n_windows"), "status": m.get("status"),
        "peak score": f"{m['peak_score']:.4g} (threshold {m['threshold']:.4g}, severity {m['severity']:.2f}x)",
        "percentile of the peak": f"{p.percentile:.2%} of this run's windows score lower",
        "top features": feats, "model": m.get("model_id"), "feedback": m.get("feedback") or "not judged yet",
    }
    return (f'<div class="panel" data-interval="{html.escape(str(m["interval_id"]))}"><h3>#{i} '
            f'{html.escape(str(m["entity"]))}: severity {m["severity"]:.2f}x</h3>{_kv(meta)}'
            f'<div class="charts">{recon}{error}{where}</div></div>')


def render_report(data: ReportData) -> str:
    """The report as one self-contained HTML document."""
    sections = [f"<h1>{html.escape(data.title)}</h1>",
                f'<div class="muted">generated {data.generated_at:%Y-%m-%d %H:%M} UTC by adspark</div>',
                "<h2>Run summary</h2>", _kv(data.summary)]
    density = None
    if data.val_quantiles and data.quantile_levels:
        density = quantile_density(data.val_quantiles, data.quantile_levels)
    sections.append("<h2>Scores</h2><div class=\"charts\">" + histogram(
        "score distribution", data.scores, "score", markers=[("threshold", data.threshold, 1)],
        density=density, density_name="validation scores (threshold fitted on)", log_y=True,
    ))
    if data.roc is not None:
        c = data.roc
        sections.append(line_chart(
            f"ROC (AUC {c['roc_auc']:.3f})", [Series("ROC", np.r_[0, c["fpr"]], np.r_[0, c["tpr"]], 0),
                                             Series("chance", np.array([0, 1.0]), np.array([0, 1.0]), 5, True)],
            "false positive rate", "true positive rate", kind="roc"))
        sections.append(line_chart(
            f"precision-recall (AP {c['pr_auc']:.3f})", [Series("PR", c["recall"], c["precision"], 2)],
            "recall", "precision", kind="pr"))
    else:
        sections.append('<p class="muted">No labels overlap this run: ROC and PR curves need labels '
                        "(the labels table or analyst feedback).</p>")
    sections.append("</div>")
    if data.models:
        sections.append("<h2>Models</h2>" + "".join(_kv(m) for m in data.models))
    sections.append(f"<h2>Top anomaly intervals ({len(data.panels)})</h2>")
    if not data.panels:
        sections.append('<p class="muted">No anomaly interval in this run.</p>')
    for i, p in enumerate(data.panels, 1):
        sections.append(_panel(p, i, data.scores))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>"
            + "".join(sections) + "</body></html>")

