"""Job ``evaluate``: scores and intervals of a date range against labeled anomalies.

Reads the scores of ``[start, end]`` (one model or all that scored the range), the labels
(``evaluate.labels_table``: ``entity``, ``start``, ``end``; a point label has start = end) and the
detected intervals, and computes with :mod:`adspark.core.evaluate`:

- windows: a window is positive when it overlaps a label of its entity; ROC AUC and PR AUC of the
  scores; precision / recall / F1 of ``is_anomaly`` (the fitted thresholds) and at the best single
  threshold (an oracle that reads the labels, shown for comparison only);
- intervals: labeled anomalies detected (overlapped by an interval), median detection delay,
  interval precision, false intervals per entity-night;
- NAB (standard, reward-low-FP, reward-low-FN): each entity is a series whose rows are its
  windows in time order, each run of positive windows a NAB window, ``is_anomaly`` the detections;
- points: every bucket (row mode: every event) judged once, by the window ending at it (its
  newest ``stride`` buckets); precision, recall, F1, false-alarm rate, missed-alarm rate.

Each model that scored the range is evaluated on its own (one row per model appended to
``evaluations``), so a challenger scored beside the champion is compared on the same nights and
labels; the summary then ranks the models by NAB standard score. The scores collected to the driver are five narrow
columns per window (about 40 bytes each), bounded by the windows of the range.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adspark.config import EvaluateJobConfig
from adspark.core.buckets import epoch_seconds
from adspark.core.evaluate import (
    best_f1,
    match_intervals,
    nab_scores,
    overlap_labels,
    point_counts,
    point_metrics,
    pr_auc,
    prf_at,
    roc_auc,
)
from adspark.errors import EmptyInputError, SchemaMismatchError, check_range
from adspark.runs import recorded_run
from adspark.storage import TableStore
from schemas import EVALUATIONS, INTERVALS, MODELS, SCORES, WINDOW_SPECS


@dataclass(frozen=True)
class Evaluation:
    """The evaluation of one range: a row of ``evaluations`` per model (in model id order) and the
    summary (one line per model, ranked by NAB standard score when there are several)."""

    rows: tuple[dict, ...]
    message: str

    @property
    def values(self) -> dict:
        """The row of the first model (the only one when one model scored the range)."""
        return self.rows[0]


def evaluate_frames(
    scores: pd.DataFrame, labels: pd.DataFrame, intervals: pd.DataFrame, nights: int
) -> dict:
    """Every metric of the ``evaluations`` table from plain frames (no Spark).

    Args:
        scores: ``entity``, ``window_start``, ``window_end``, ``score``, ``is_anomaly``, and
            ``bucket_seconds`` (of the window spec that made the window; 0 in row mode; without
            the column, no point-level metrics).
        labels: ``entity``, ``start``, ``end`` (the labels touching the range).
        intervals: ``entity``, ``start``, ``end`` (the detected intervals touching the range).
        nights: Nights in the range (for false intervals per entity-night).
    """
    scores = scores.sort_values(["entity", "window_end", "window_start"], kind="stable").reset_index(drop=True)
    positive = overlap_labels(
        scores["entity"].to_numpy(), scores["window_start"].to_numpy(), scores["window_end"].to_numpy(),
        labels["entity"].to_numpy(), labels["start"].to_numpy(), labels["end"].to_numpy(),
    )
    s = scores["score"].to_numpy(np.float64)
    flags = scores["is_anomaly"].to_numpy(bool)
    both = positive.any() and (~positive).any()
    fitted = prf_at(flags.astype(np.float64), positive, 0.5)
    best = best_f1(s, positive) if both else None
    match = match_intervals(
        list(zip(intervals["entity"], intervals["start"], intervals["end"])),
        list(zip(labels["entity"], labels["start"], labels["end"])),
    )
    entities = scores["entity"].nunique()
    series = [
        (flags[idx], positive[idx]) for idx in scores.groupby("entity", sort=True).indices.values()
    ]
    nab = nab_scores(series)
    return {
        **_points(scores, labels),
        "windows": int(len(scores)),
        "positive_windows": int(positive.sum()),
        "roc_auc": roc_auc(s, positive),
        "pr_auc": pr_auc(s, positive),
        "precision": fitted.precision if positive.any() else float("nan"),
        "recall": fitted.recall if positive.any() else float("nan"),
        "f1": fitted.f1 if positive.any() else float("nan"),
        "best_f1": best.f1 if best else float("nan"),
        "best_threshold": best.threshold if best else float("nan"),
        "labels": match.labels,
        "labels_detected": match.detected,
        "intervals": match.intervals,
        "true_intervals": match.true_intervals,
        "median_delay_s": match.median_delay_s,
        "false_intervals_per_entity_day": (
            (match.intervals - match.true_intervals) / (entities * nights) if entities else float("nan")
        ),
        "nab_standard": nab["standard"],
        "nab_reward_low_fp": nab["reward_low_FP_rate"],
        "nab_reward_low_fn": nab["reward_low_FN_rate"],
    }


def _points(scores: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """The point-level columns (None without ``bucket_seconds``)."""
    names = ("points", "positive_points", "point_precision", "point_recall", "point_f1",
             "point_false_alarm_rate", "point_missed_alarm_rate")
    if "bucket_seconds" not in scores:
        return dict.fromkeys(names)
    totals = np.zeros(4, dtype=np.int64)
    for width, part in scores.groupby("bucket_seconds", sort=True):
        totals += point_counts(
            part["entity"].to_numpy(), part["window_start"].to_numpy(), part["window_end"].to_numpy(),
            part["is_anomaly"].to_numpy(bool), labels["entity"].to_numpy(), labels["start"].to_numpy(),
            labels["end"].to_numpy(), int(width),
        )
    m = point_metrics(*(int(v) for v in totals))
    positive = m.positives > 0
    return dict(zip(names, (m.points, m.positives, m.precision if positive else float("nan"),
                            m.recall if positive else float("nan"), m.f1 if positive else float("nan"),
                            m.false_alarm_rate, m.missed_alarm_rate if positive else float("nan")), strict=True))


def _past_heads(store: TableStore, pdf: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """The scored windows without those of models trained on entity heads
    (``window.scaling.entity_head``) that end inside their entity's head: those windows trained
    or validated the model, and the evaluation is of the windows after them."""
    from adspark.models.registry import find_model
    from adspark.pipeline.specs import entity_first_buckets

    keep = np.ones(len(pdf), dtype=bool)
    for model_id in models:
        model = find_model(store, model_id=model_id)
        head = model.metrics.get("entity_head_seconds")
        if head is None:
            continue
        firsts = entity_first_buckets(store, model.spec_id).toPandas().set_index("entity")["first_s"]
        mine = (pdf["model_id"] == model_id).to_numpy()
        first = pdf["entity"].map(firsts).to_numpy(np.float64)
        inside = epoch_seconds(pdf["window_end"]) <= first + float(head)  # NaN first: no head, kept
        keep &= ~(mine & inside)
    return pdf[keep].reset_index(drop=True)


def _bucket_seconds(store: TableStore, models: list[str]) -> dict[str, int]:
    """Bucket width of the window spec of each model (0 in row mode)."""
    from pyspark.sql import functions as F

    specs = store.read(MODELS.name).where(F.col("model_id").isin(models)).select("model_id", "spec_id")
    widths = store.read(WINDOW_SPECS.name).select("spec_id", "bucket_seconds")
    return {r.model_id: int(r.bucket_seconds) for r in specs.join(widths, "spec_id").collect()}


def _labels(store: TableStore, table: str, lo: dt.datetime, hi: dt.datetime) -> pd.DataFrame:
    from pyspark.sql import functions as F

    df = store.read(table)
    missing = [c for c in ("entity", "start", "end") if c not in df.columns]
    if missing:
        raise SchemaMismatchError(table, missing[0], "a labels table with entity, start, end", "missing")
    return (
        # inclusive bounds: a point label at the last row-mode window (start = end = hi) counts;
        # overlap_labels does the exact matching
        df.where((F.col("start") <= F.lit(hi)) & (F.col("end") >= F.lit(lo)))
        .select(F.col("entity").cast("string"), "start", "end").toPandas()
    )


def run_evaluate(store: TableStore, cfg: EvaluateJobConfig, start: dt.date, end: dt.date) -> Evaluation:
    """Evaluate the scores and intervals of nights ``[start, end]``, each model on its own; append
    one row per model to ``evaluations``."""
    from pyspark.sql import functions as F

    check_range(start, end)
    with recorded_run(store, "evaluate", cfg, start, end) as run:
        scores = store.read(SCORES.name).where(F.col("date").between(F.lit(start), F.lit(end)))
        if cfg.evaluate.model_id:
            scores = scores.where(F.col("model_id") == cfg.evaluate.model_id)
        pdf = scores.select("entity", "window_start", "window_end", "score", "is_anomaly", "model_id").toPandas()
        if pdf.empty:
            which = f" by model {cfg.evaluate.model_id}" if cfg.evaluate.model_id else ""
            raise EmptyInputError(f"evaluate: no scores{which} between {start} and {end}: run score or nightly first")
        models = sorted(pdf["model_id"].unique())
        pdf = _past_heads(store, pdf, models)
        widths = _bucket_seconds(store, models)
        if set(widths) == set(models):
            pdf["bucket_seconds"] = pdf["model_id"].map(widths)
        lo = pd.Timestamp(pdf["window_start"].min()).to_pydatetime()
        hi = pd.Timestamp(pdf["window_end"].max()).to_pydatetime()
        labels = _labels(store, cfg.evaluate.labels_table, lo, hi)
        intervals = (
            store.read(INTERVALS.name)
            .where(F.col("model_id").isin(models) & (F.col("start") <= F.lit(hi)) & (F.col("end") >= F.lit(lo)))
            .select("entity", "start", "end", "model_id").toPandas()
            if store.exists(INTERVALS.name) else pd.DataFrame(columns=["entity", "start", "end", "model_id"])
        )
        created = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = []
        for model_id in models:
            values = evaluate_frames(
                pdf[pdf["model_id"] == model_id].drop(columns="model_id").reset_index(drop=True), labels,
                intervals[intervals["model_id"] == model_id].drop(columns="model_id").reset_index(drop=True),
                (end - start).days + 1,
            )
            rows.append({
                "evaluation_id": f"eval-{uuid.uuid4().hex[:12]}",
                "date_from": start, "date_to": end, "model_ids": [model_id],
                "labels_table": cfg.evaluate.labels_table, **values, "created_at": created,
            })
        store.append(store.spark.createDataFrame([tuple(r[f.name] for f in EVALUATIONS.fields) for r in rows],
                                                 EVALUATIONS.struct_type()), EVALUATIONS.name)
        run.rows_read = len(pdf)
        run.message = _summary(start, end, rows)
        return Evaluation(tuple(rows), run.message)


def _summary(start: dt.date, end: dt.date, rows: list[dict]) -> str:
    """One line for one model; with several, a header and one line per model, best NAB first."""
    if len(rows) == 1:
        return f"evaluate {start}..{end} ({rows[0]['model_ids'][0]}): {_model_summary(rows[0])}"
    ranked = sorted(rows, key=lambda r: -r["nab_standard"])
    lines = [f"evaluate {start}..{end}: {len(rows)} models on the same nights and labels, best NAB standard first"]
    lines += [f"  {r['model_ids'][0]}: {_model_summary(r)}" for r in ranked]
    return "\n".join(lines)


def _model_summary(values: dict) -> str:
    return (
        f"{values['windows']} windows, "
        f"{values['positive_windows']} labeled; ROC AUC {values['roc_auc']:.3f}, PR AUC {values['pr_auc']:.3f}; "
        f"at the fitted thresholds P {values['precision']:.3f} R {values['recall']:.3f} F1 {values['f1']:.3f} "
        f"(best-F1 threshold {values['best_threshold']:.4g}: F1 {values['best_f1']:.3f}); "
        f"intervals: {values['labels_detected']}/{values['labels']} labels detected, "
        f"{values['true_intervals']}/{values['intervals']} intervals true, median delay "
        f"{values['median_delay_s'] / 3600:.1f} h, {values['false_intervals_per_entity_day']:.4f} false per "
        f"entity-night; NAB standard {values['nab_standard']:.1f}, low FP {values['nab_reward_low_fp']:.1f}, "
        f"low FN {values['nab_reward_low_fn']:.1f}{_point_summary(values)}"
    )


def _point_summary(values: dict) -> str:
    if values["points"] is None:
        return ""
    return (
        f"; points: {values['positive_points']}/{values['points']} labeled, P {values['point_precision']:.3f} "
        f"R {values['point_recall']:.3f} F1 {values['point_f1']:.3f}, false-alarm rate "
        f"{values['point_false_alarm_rate']:.4f}, missed-alarm rate {values['point_missed_alarm_rate']:.3f}"
    )
