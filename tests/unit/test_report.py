"""The HTML report: every figure is in the document, and it renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from adspark.core.evaluate import curve_points, pr_auc, roc_auc
from adspark.core.report import IntervalPanel, ReportData, panel_figures, render_report, run_figures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _data() -> ReportData:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.gamma(2.0, 0.5, 2000), rng.gamma(2.0, 0.5, 40) + 6]
    labels = np.r_[np.zeros(2000, bool), np.ones(40, bool)]
    times = np.arange("2026-02-01T00", "2026-02-03T00", dtype="datetime64[h]").astype("datetime64[s]")
    series = rng.gamma(2.0, 0.5, len(times))
    series[20:26] += 7
    w = np.linspace(0, 3, 24)
    panel = IntervalPanel(
        meta={"interval_id": "iv-1", "entity": "u00042", "start": "2026-02-01 20:00", "end": "2026-02-02 02:00",
              "peak_score": float(series.max()), "threshold": 5.0, "severity": float(series.max() / 5.0),
              "n_windows": 6, "status": "closed", "model_id": "m-1", "top_features": ["amount_sum", "event_count"],
              "top_shares": [0.7, 0.2], "feedback": "true by alice: confirmed"},
        window_end=times, scores=series, thresholds=np.full(len(times), 5.0),
        features=("amount_sum", "event_count"), actual=np.c_[np.sin(w) * 4, np.cos(w)],
        reconstruction=np.c_[np.sin(w), np.cos(w) * 0.9], step_seconds=3600,
        percentile=float((scores < series.max()).mean()),
    )
    roc = {**curve_points(scores, labels), "roc_auc": roc_auc(scores, labels), "pr_auc": pr_auc(scores, labels)}
    levels = tuple(np.linspace(0, 1, 101))
    return ReportData(
        title="adspark report: test", summary={"nights": "2026-02-01 .. 2026-02-02", "windows scored": "2,040"},
        scores=scores, threshold=5.0, val_quantiles=tuple(np.quantile(scores[:2000], levels)), quantile_levels=levels,
        roc=roc, panels=(panel,), models=({"model": "m-1", "detector": "dense_ae"},),
    )


def _names(fig) -> set[str]:
    return {t.name for t in fig.data} | {sh.name for sh in fig.layout.shapes if sh.name}


def test_every_figure_shows_what_it_says():
    d = _data()
    run = run_figures(d)
    assert set(run) == {"scores", "roc", "pr"}
    assert _names(run["scores"]) >= {"share of windows", "threshold", "validation scores (threshold fitted on)"}
    bars = run["scores"].data[0]
    assert len(bars.x) == 40 and abs(np.nansum(np.array(bars.y, dtype=float)) - 1) < 1e-9  # shares of all scores
    assert run["scores"].layout.yaxis.type == "log"
    panel = panel_figures(d.panels[0], d.scores)
    assert set(panel) == {"reconstruction", "error-over-time", "peak-in-scores"}
    assert _names(panel["reconstruction"]) == {"amount_sum", "amount_sum (reconstructed)", "event_count",
                                               "event_count (reconstructed)"}
    over_time = panel["error-over-time"]
    assert _names(over_time) == {"score", "threshold", "interval"}
    assert over_time.layout.xaxis.rangeslider.visible  # zoom on the time series
    assert np.asarray(over_time.data[0].x).dtype.kind == "M"  # a time axis, not seconds
    assert _names(panel["peak-in-scores"]) >= {"this interval's peak", "threshold"}
    for fig in [*run.values(), *panel.values()]:  # legends under the plot, never over the title
        assert fig.layout.legend.y < 0 and fig.layout.title.text


def test_report_holds_every_figure_and_fetches_nothing():
    doc = render_report(_data())
    charts = re.findall(r'data-chart="([^"]+)"', doc)
    assert charts == ["scores", "roc", "pr", "reconstruction", "error-over-time", "peak-in-scores"]
    assert len(re.findall(r"Plotly\.newPlot\(\s*\"", doc)) == 6  # one call per figure
    assert len(re.findall(r"/\*\*\s*\* plotly\.js v", doc)) == 1  # the library inlined once
    assert not re.search(r'<(script|link|img)[^>]*(src|href)="(https?:)?//', doc)  # self-contained
    assert "u00042" in doc and "true by alice: confirmed" in doc and "severity" in doc


def test_report_without_labels_or_intervals_says_so():
    d = _data()
    doc = render_report(ReportData(title="t", summary={}, scores=d.scores, threshold=5.0))
    assert "need labels" in doc and "No anomaly interval" in doc
    assert re.findall(r'data-chart="([^"]+)"', doc) == ["scores"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (make setup installs it as root)")
def test_report_renders_in_headless_chromium(tmp_path: Path):
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(render_report(_data()), encoding="utf-8")
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
         "--window-size=1200,2400", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2400, 1200)

    def share(rgb: tuple[int, int, int], tol: int = 40) -> float:
        return float((np.abs(img - np.array(rgb)).sum(axis=2) < tol).mean())

    assert share((0x9e, 0xca, 0xe1)) > 0.001  # histogram bars
    assert share((0x1f, 0x77, 0xb4)) > 0.0002  # ROC / score lines
    assert share((0xd6, 0x27, 0x28)) > 0.0002  # threshold lines and the alert panel border
    assert share((0x2c, 0xa0, 0x2c)) > 0.0001  # fitted distribution / PR curve
    # the artifact kept for the closing note
    keep = Path(__file__).resolve().parents[2] / "reports"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "report-test-screenshot.png")
