"""Job ``report``: gather a run's scores, intervals, labels and models, render the HTML report.

The driver collects narrow columns only: the scores of the range (at most ``max_scores``, a
uniform sample beyond that for the histogram and curves), the top intervals, the windows around
each of them, and the peak window's values (to reconstruct with the model).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from adspark.config import ConfigError, ScoreJobConfig
from adspark.core.drift import QUANTILE_LEVELS
from adspark.core.evaluate import curve_points, overlap_labels, pr_auc, roc_auc
from adspark.core.report import IntervalPanel, ReportData, render_report
from adspark.errors import EmptyInputError, check_range
from adspark.models.registry import RegisteredModel, find_model
from adspark.pipeline.specs import StoredSpec
from adspark.pipeline.window import window_values
from adspark.storage import TableStore
from schemas import FEEDBACK, INTERVALS, SCORES

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

MAX_SCORES = 500_000


def _labels(store: TableStore, table: str) -> pd.DataFrame:
    cols = ["entity", "start", "end"]
    frames = []
    if store.exists(table):
        frames.append(store.read(table).select(*cols).toPandas())
    from adspark.pipeline.feedback import true_anomalies

    frames.append(true_anomalies(store).toPandas())
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _panel(store: TableStore, model: RegisteredModel, iv, scores: pd.DataFrame, run_scores: np.ndarray,
           features: list[str], feedback: dict[str, str], top_k: int) -> IntervalPanel:
    from adspark.models.lookup import load_detector

    mine = scores[scores["entity"] == iv.entity].sort_values("window_end")
    lo, hi = pd.Timestamp(iv.start) - pd.Timedelta(days=1), pd.Timestamp(iv.end) + pd.Timedelta(days=1)
    around = mine[(mine["window_end"] >= lo) & (mine["window_start"] <= hi)]
    inside = mine[(mine["window_start"] < pd.Timestamp(iv.end)) & (mine["window_end"] > pd.Timestamp(iv.start))]
    peak = inside.loc[inside["score"].idxmax()] if len(inside) else mine.loc[mine["score"].idxmax()]
    values = window_values(store, StoredSpec.load(store, model.spec_id), iv.entity, peak["window_id"],
                           peak["window_end"])
    x = values.reshape(1, model.n_steps, model.n_features)
    detector = load_detector(model, iv.entity if model.scope == "entity" else None)
    recon = np.asarray(detector.reconstruct(x))[0]
    names = list(iv.top_features or [])[:top_k] or features[:top_k]
    idx = [features.index(n) for n in names if n in features]
    step = int(round((pd.Timestamp(peak["window_end"]) - pd.Timestamp(peak["window_start"])).total_seconds()
                     / model.n_steps))
    meta = {k: getattr(iv, k) for k in ("interval_id", "entity", "start", "end", "peak_score", "threshold",
                                        "severity", "n_windows", "status", "model_id")}
    meta.update(top_features=list(iv.top_features or []), top_shares=list(iv.top_shares or []),
                feedback=feedback.get(iv.interval_id))
    return IntervalPanel(
        meta=meta,
        window_end=around["window_end"].to_numpy("datetime64[s]"),
        scores=around["score"].to_numpy(float),
        thresholds=around["threshold"].to_numpy(float),
        features=tuple(features[i] for i in idx),
        actual=x[0][:, idx],
        reconstruction=recon[:, idx],
        step_seconds=step,
        percentile=float((run_scores < float(iv.peak_score)).mean()) if run_scores.size else float("nan"),
    )


def _one_model_per_night(scores: DataFrame) -> None:
    """Refuse a range where some night was scored by several models (a challenger beside the
    champion): their scores would be pooled in one histogram.

    Raises:
        ConfigError: Naming the nights and the models, and the flag that picks one.
    """
    from pyspark.sql import functions as F

    shared = (
        scores.groupBy("date").agg(F.countDistinct("model_id").alias("n"), F.sort_array(F.collect_set("model_id")).alias("m"))
        .where(F.col("n") > 1).orderBy("date").collect()
    )
    if shared:
        models = sorted({m for r in shared for m in r.m})
        raise ConfigError(
            f"report: {len(shared)} night(s) from {shared[0].date} were scored by several models "
            f"({', '.join(models)}); pass --model-id to choose one (`adspark evaluate` compares them)"
        )


def build_report(
    store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date, top: int = 5,
    labels_table: str = "labels", max_scores: int = MAX_SCORES,
) -> ReportData:
    """Everything the report of nights ``[start, end]`` shows.

    Raises:
        EmptyInputError: When the range has no scores.
    """
    from pyspark.sql import functions as F

    from adspark.pipeline.score import feature_names

    check_range(start, end)
    rng = store.read(SCORES.name).where(F.col("date").between(F.lit(start), F.lit(end)))
    if cfg.score.model_id:
        rng = rng.where(F.col("model_id") == cfg.score.model_id)
    else:
        _one_model_per_night(rng)
    counts = rng.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("is_anomaly").cast("long")).alias("a"),
                     F.countDistinct("entity").alias("e")).first()
    if not counts.n:
        raise EmptyInputError(f"report: no scores between {start} and {end}: run score or nightly first")
    sample = rng if counts.n <= max_scores else rng.sample(fraction=max_scores / counts.n, seed=7)
    scores = sample.select("window_id", "entity", "window_start", "window_end", "score", "threshold",
                           "is_anomaly", "model_id").toPandas()
    model_ids = [r.model_id for r in rng.groupBy("model_id").count().orderBy(F.desc("count")).collect()]
    models = [find_model(store, model_id=m) for m in model_ids]
    main = models[0]
    labels = _labels(store, labels_table)
    roc = None
    if len(labels):
        pos = overlap_labels(scores["entity"].to_numpy(), scores["window_start"].to_numpy(),
                             scores["window_end"].to_numpy(), labels["entity"].to_numpy(),
                             labels["start"].to_numpy(), labels["end"].to_numpy())
        if pos.any() and (~pos).any():
            s = scores["score"].to_numpy(float)
            roc = {**curve_points(s, pos), "roc_auc": roc_auc(s, pos), "pr_auc": pr_auc(s, pos)}
    lo, hi = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    top_iv = (
        store.read(INTERVALS.name)
        .where(F.col("model_id").isin(model_ids) & (F.col("end") > F.lit(lo)) & (F.col("start") < F.lit(hi)))
        .orderBy(F.desc("severity"), "interval_id").limit(top).collect()
        if store.exists(INTERVALS.name) else []
    )
    n_intervals = (
        store.read(INTERVALS.name)
        .where(F.col("model_id").isin(model_ids) & (F.col("end") > F.lit(lo)) & (F.col("start") < F.lit(hi))).count()
        if store.exists(INTERVALS.name) else 0
    )
    feedback = {}
    if store.exists(FEEDBACK.name):
        for r in store.read(FEEDBACK.name).orderBy("labeled_at").collect():
            feedback[r.interval_id] = f"{r.label} by {r.who}" + (f": {r.comment}" if r.comment else "")
    run_scores = scores["score"].to_numpy(float)
    by_id = {m.model_id: m for m in models}
    panels = []
    for iv in top_iv:
        model = by_id[iv.model_id]
        entity_scores = rng.where(F.col("entity") == iv.entity).select(
            "window_id", "entity", "window_start", "window_end", "score", "threshold").toPandas()
        panels.append(_panel(store, model, iv, entity_scores, run_scores, feature_names(store, model.spec_id),
                             feedback, cfg.score.top_k))
    summary = {
        "nights": f"{start} .. {end}",
        "windows scored": f"{int(counts.n):,}" + (f" (histogram on a sample of {len(scores):,})"
                                                  if counts.n > max_scores else ""),
        "entities": f"{int(counts.e):,}",
        "windows above threshold": f"{int(counts.a or 0):,} ({(counts.a or 0) / counts.n:.2%})",
        "anomaly intervals": f"{n_intervals:,}",
        "models": ", ".join(model_ids),
        "labels": f"{len(labels):,} labeled anomalies (labels table + intervals judged true)",
    }
    model_meta = tuple(
        {"model": m.model_id, "detector": m.detector, "trained on": f"{m.train_from} .. {m.train_to}",
         "threshold": f"{m.threshold.method} = {m.threshold.value:.6g}"
         + (f" ({len(m.entity_thresholds)} entity thresholds)" if m.entity_thresholds else ""),
         "window": f"{m.n_steps} steps x {m.n_features} features, spec {m.spec_id}", "scope": m.scope}
        for m in models
    )
    quantiles = tuple(main.metrics.get("val_score_quantiles") or ())
    return ReportData(
        title=f"adspark report: {start} .. {end}", summary=summary, scores=run_scores,
        threshold=float(main.threshold.value), val_quantiles=quantiles,
        quantile_levels=tuple(QUANTILE_LEVELS.tolist()) if quantiles else (),
        roc=roc, panels=tuple(panels), models=model_meta,
    )


def run_report(store: TableStore, cfg: ScoreJobConfig, start: dt.date, end: dt.date, out: Path,
               top: int = 5, labels_table: str = "labels") -> str:
    """Write the report of nights ``[start, end]`` to ``out``; returns a one-line summary."""
    data = build_report(store, cfg, start, end, top, labels_table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data), encoding="utf-8")
    return (f"report {start}..{end}: {data.summary['windows scored']} windows, {len(data.panels)} interval panels"
            f"{', ROC/PR curves' if data.roc else ''} -> {out}")
